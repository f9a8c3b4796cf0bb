"""What a test does when something it needs is missing on this machine.

A developer's laptop may lack gcloud, terraform or a published model: there the test is
skipped with the reason. In CI (`CI` set, as `.ci/run` runs) nothing may be skipped
silently: the same call fails the test, naming what is missing and how CI gets it.
"""

from __future__ import annotations

import os
import platform
import shutil
from typing import NoReturn

import pytest


def missing(reason: str) -> NoReturn:
    """Skip locally, fail in CI."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: this test must run here; `make test` sets the machine up)")
    pytest.skip(reason)


#: qemu-user, which runs a program on an emulated CPU model whatever the host's CPU is
QEMU = shutil.which("qemu-x86_64")

#: the marks of a test that runs programs under `qemu-x86_64 -cpu <model>`: x86-64 hosts
#: only; without qemu-user skipped locally, and in CI the test itself fails on `QEMU`
QEMU_MARKS = [
    pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="x86-64 CPU models only"),
    pytest.mark.skipif(
        QEMU is None and not os.environ.get("CI"),
        reason="qemu-x86_64 not installed (Debian: apt-get install qemu-user; `make test` installs it as root)",
    ),
]
