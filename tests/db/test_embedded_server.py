"""The embedded server's memory: shared_buffers sized for a real knowledge base."""

from __future__ import annotations

import sqlalchemy as sa

from shared.db.embedded import shared_buffers_target

MB = 1 << 20


def test_shared_buffers_target_is_a_quarter_of_memory_within_bounds() -> None:
    assert shared_buffers_target(256 * MB) == 128 * MB  # never below initdb's default
    assert shared_buffers_target(2048 * MB) == 512 * MB
    assert shared_buffers_target(64 * 1024 * MB) == 1024 * MB  # capped


def test_the_test_server_asks_for_the_target(engine) -> None:
    """Started through start_embedded, the server has the target, or has it pending for
    its next start (the setting needs a restart)."""
    with engine.connect() as conn:
        current, pending = conn.execute(
            sa.text(
                """SELECT pg_size_bytes(current_setting('shared_buffers')),
                          (SELECT pg_size_bytes(setting) FROM pg_file_settings
                            WHERE name = 'shared_buffers' ORDER BY seqno DESC LIMIT 1)"""
            )
        ).one()
    assert max(current, pending or 0) >= shared_buffers_target()
