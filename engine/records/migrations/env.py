"""Alembic's environment: run by RecordStore.migrate() with a live connection, or by the
alembic command with `sqlalchemy.url` set (alembic -x url=... upgrade head)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from engine.records.schema import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    with create_engine(url).connect() as live:
        context.configure(connection=live, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


run()
