"""Python programs under `qemu-x86_64 -cpu <model>`: one saturating and one exact int8 kernel.

onnxruntime picks its int8 kernels by the CPU it runs on; the INT8 tests run the same
program on two emulated CPUs, whatever the host is: Haswell-v4 (AVX2 without VNNI: U8S8
products added in pairs into 16 bits with saturation) and SandyBridge-v1 (AVX without
AVX2: the exact path, as VNNI computes). The child gets this interpreter's packages
(numpy, onnxruntime), one thread, and writes its results to the `.npz` path it is given
last.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np

from tests.needs import QEMU

SATURATING = "Haswell-v4"
EXACT = "SandyBridge-v1"
CPUS = (SATURATING, EXACT)


def run_on_each_cpu(
    code: str, args: list[str], out_dir: Path, timeout: float = 900
) -> dict[str, dict[str, np.ndarray]]:
    """Run `python -c code *args <out_dir>/<cpu>.npz` under both CPUs at once; each one's arrays."""
    assert QEMU, "qemu-x86_64 is required in CI (installed by `make test` as root): apt-get install qemu-user"
    env = os.environ | {"PYTHONPATH": sysconfig.get_paths()["purelib"], "OMP_NUM_THREADS": "1"}
    python = getattr(sys, "_base_executable", sys.executable)
    outs = {cpu: out_dir / f"{cpu}.npz" for cpu in CPUS}
    runs = {
        cpu: subprocess.Popen(
            [str(QEMU), "-cpu", cpu, python, "-c", code, *args, str(outs[cpu])],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for cpu in CPUS
    }
    results = {}
    for cpu, run in runs.items():
        _, err = run.communicate(timeout=timeout)
        assert run.returncode == 0, f"{cpu}: {run.returncode}\n{err[-3000:]}"
        with np.load(outs[cpu]) as data:
            results[cpu] = dict(data)
    return results
