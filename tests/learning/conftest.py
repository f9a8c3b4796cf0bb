"""Fixtures of the learning-loop tests: clean label tables, a model store with a known
intent taxonomy, and the Pub/Sub emulator the machine ships (real client, loopback)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from learning_helpers import TEST_LABELS, publish_fake_version

from local.launcher import stop_process_group
from local.loopback import free_port
from tests.needs import missing


@pytest.fixture()
def ldb(db: Any) -> Any:
    """`db`, plus the tables of migration 0005 that the shared fixture does not empty."""
    import sqlalchemy as sa

    with db.begin() as conn:
        conn.execute(sa.text("TRUNCATE label_events, label_counters RESTART IDENTITY"))
    return db


@pytest.fixture()
def model_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store whose v1 intent model knows TEST_LABELS; the feedback function reads it."""
    from shared.learning import signals

    root = tmp_path / "models"
    publish_fake_version(root, "v1", TEST_LABELS, b"weights-v1")
    monkeypatch.setattr(signals, "_taxonomy", signals.TaxonomyCache(str(root), ttl_s=0))
    return root


@pytest.fixture()
def interactions(ldb: Any) -> Callable[..., list[str]]:
    """`interactions(n, confidence=0.4, user="alice")` inserts n unlabelled interactions
    (and the users `user` and the admin `root`)."""
    import sqlalchemy as sa

    def make(n: int, *, confidence: float | None = 0.42, user: str = "alice", needs_review: bool | None = None):
        with ldb.begin() as conn:
            conn.execute(sa.text("INSERT INTO users (id) VALUES (:u), ('root') ON CONFLICT DO NOTHING"), {"u": user})
            ids = []
            for i in range(n):
                flag = needs_review if needs_review is not None else (confidence is not None and confidence < 0.6)
                ids.append(
                    str(
                        conn.execute(
                            sa.text(
                                """INSERT INTO interactions
                                       (request_id, user_id, query, intent, intent_confidence, needs_review)
                                   VALUES (:r, :u, :q, 'concept_explanation', :c, :flag) RETURNING id"""
                            ),
                            {"r": f"r{i}", "u": user, "q": f"question {i}", "c": confidence, "flag": flag},
                        ).scalar_one()
                    )
                )
        return ids

    return make


# --- the Pub/Sub emulator ------------------------------------------------------------


@pytest.fixture(scope="session")
def pubsub_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`gcloud beta emulators pubsub` on a free loopback port; yields host:port.

    Started in its own session (setsid) so teardown stops the whole process group (the
    gcloud wrapper and the Java server it starts).
    """
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        missing("gcloud (with the Pub/Sub emulator) is not installed")
    port = free_port()
    data_dir = tmp_path_factory.mktemp("pubsub-data")
    log_path = data_dir.parent / "pubsub-emulator.log"
    env = {**os.environ, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [gcloud, "beta", "emulators", "pubsub", "start", f"--host-port=127.0.0.1:{port}", f"--data-dir={data_dir}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    host = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"Pub/Sub emulator exited ({proc.returncode}): {log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"Pub/Sub emulator did not start: {log_path.read_text()[-2000:]}")
                time.sleep(0.3)
        yield host
    finally:
        stop_process_group(proc, grace_s=15)


@pytest.fixture()
def pubsub(pubsub_emulator: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Real clients on the emulator; `pubsub.topic(name)` creates a topic with a pull subscription."""
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator)
    from google.cloud import pubsub_v1

    class Emulator:
        project = f"learning-{os.getpid()}"

        def __init__(self) -> None:
            self.publisher = pubsub_v1.PublisherClient()
            self.subscriber = pubsub_v1.SubscriberClient()
            self.host = pubsub_emulator

        def topic_path(self, name: str) -> str:
            return f"projects/{self.project}/topics/{name}"

        def topic(self, name: str) -> tuple[str, str]:
            topic = self.topic_path(name)
            subscription = f"projects/{self.project}/subscriptions/{name}-sub"
            self.publisher.create_topic(name=topic)
            self.subscriber.create_subscription(name=subscription, topic=topic)
            return topic, subscription

        def pull(self, subscription: str, expected: int, timeout: float = 10.0) -> list[Any]:
            got: list[Any] = []
            deadline = time.monotonic() + timeout
            while len(got) < expected and time.monotonic() < deadline:
                response = self.subscriber.pull(subscription=subscription, max_messages=10, timeout=5)
                if response.received_messages:
                    self.subscriber.acknowledge(
                        subscription=subscription, ack_ids=[m.ack_id for m in response.received_messages]
                    )
                got.extend(m.message for m in response.received_messages)
            return got

    emulator = Emulator()
    yield emulator
    emulator.publisher.stop()
    emulator.subscriber.close()
