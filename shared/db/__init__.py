"""PostgreSQL + pgvector: engine, migrations, and the SQL each capability needs."""

from shared.db.engine import create_engine, get_engine, set_engine

__all__ = ["create_engine", "get_engine", "set_engine"]
