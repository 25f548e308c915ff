"""Alembic environment for campaign files.

Migrations always run on a connection handed in by `alloop.store.db` through
`config.attributes["connection"]`, so they share the caller's engine settings (WAL, foreign keys)
and transaction.
"""

from __future__ import annotations

from alembic import context

from alloop.store.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable from a hand-run `alembic` command
    raise RuntimeError("alloop migrations run through alloop.store.db, not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
