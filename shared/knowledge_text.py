"""What a knowledge node's embedding is computed from, and the hash that says whether it
is still valid.

Kept free of database imports so that every place that embeds nodes (the course loader,
`migrate_vectors`, and the benchmarks and training scripts in the training venv, which
has no SQLAlchemy) builds the text the same way: a vector made from other text would not
match the ones in the knowledge base.
"""

from __future__ import annotations

import hashlib


def content_hash(title: str, content: str) -> str:
    """SHA-256 of a node's title and body: unchanged text keeps its embedding on reload."""
    return hashlib.sha256(f"{title}\n\n{content}".encode()).hexdigest()


def node_text(title: str, content: str) -> str:
    """What gets embedded for a node: its title carries topic words the body may omit."""
    return f"{title}. {content}"
