"""The stores the record's tests run against: SQLite always, PostgreSQL where it is installed."""

from __future__ import annotations

import pytest

from benchmarks.postgres import LocalPostgres, server_bin
from engine.records import RecordStore


@pytest.fixture(scope="session")
def postgres():
    """One throw-away PostgreSQL for the session (skipped, with the reason, when not installed)."""
    if server_bin() is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)")
    with LocalPostgres() as server:
        yield server


def fresh_postgres_store(server: LocalPostgres, name: str) -> RecordStore:
    """A new, empty database on the session's server."""
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 port={server.port} user=postgres", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}"')
        c.execute(f'CREATE DATABASE "{name}"')
    return RecordStore(server.url.rsplit("/", 1)[0] + f"/{name}")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        store = RecordStore(f"sqlite:///{tmp_path / 'records.sqlite3'}")
    else:
        server = request.getfixturevalue("postgres")
        store = fresh_postgres_store(server, f"t{abs(hash(request.node.name)) % 10**8}")
    store.migrate()
    yield store
    store.dispose()
