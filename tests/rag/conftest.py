"""Fixtures for the knowledge base: a counting embedder and the Firestore emulator."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

from local.launcher import stop_process_group
from local.loopback import free_port
from tests.fakes import CountingEmbedder
from tests.needs import missing


@pytest.fixture()
def embedder():
    return CountingEmbedder()


@pytest.fixture()
def make_embedder():
    return CountingEmbedder


@pytest.fixture(scope="session")
def firestore_emulator():
    """`gcloud beta emulators firestore start` on a free loopback port, stopped after."""
    if not shutil.which("gcloud"):
        missing("gcloud (with the Firestore emulator) is not installed")
    port = free_port()
    host = f"127.0.0.1:{port}"
    proc = subprocess.Popen(
        ["gcloud", "beta", "emulators", "firestore", "start", f"--host-port={host}", "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    missing("the Firestore emulator did not start")
                time.sleep(0.5)
        previous = os.environ.get("FIRESTORE_EMULATOR_HOST")
        os.environ["FIRESTORE_EMULATOR_HOST"] = host
        yield host
        if previous is None:
            os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
        else:
            os.environ["FIRESTORE_EMULATOR_HOST"] = previous
    finally:
        stop_process_group(proc)
