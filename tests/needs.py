"""What a test does when something it needs is missing on this machine.

A developer's laptop may lack gcloud, terraform or a published model: there the test is
skipped with the reason. In CI (`CI` set, as `.ci/run` runs) nothing may be skipped
silently: the same call fails the test, naming what is missing and how CI gets it.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing(reason: str) -> NoReturn:
    """Skip locally, fail in CI."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: this test must run here; `make test` sets the machine up)")
    pytest.skip(reason)
