"""One SQL store for answers and verdicts: SQLAlchemy 2 for the queries, Alembic for the schema.

Writes are idempotent on the request id (an answer written twice, e.g. replayed from the disk
spool after a crash, is stored once). Any failure to reach the database is raised as
`StoreUnavailable`, which the writer answers by spooling to disk.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, delete, event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from engine.records.schema import AnswerRecord, Verdict

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
ANSWER_COLUMNS = tuple(c.name for c in AnswerRecord.__table__.columns)
VERDICT_LABELS = ("NORMAL", "PNEUMONIA")


class StoreUnavailable(RuntimeError):
    """The database cannot be reached or refused the write (records wait on disk)."""


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL lets readers (monitoring) run beside the writer; a busy timeout lets several worker
    processes share the file."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def redacted(url: str) -> str:
    """The URL without its password, for logs and errors."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


class RecordStore:
    def __init__(self, url: str, connect_timeout: float = 5.0) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 5})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(
                url,
                pool_pre_ping=True,
                pool_size=2,
                max_overflow=2,
                connect_args={"connect_timeout": int(max(1, connect_timeout))},
            )
        self.engine: Engine = engine

    def migrate(self) -> None:
        """Bring the schema to the newest migration (Alembic), as every process does at start."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        if self.is_sqlite:  # the file's folder, made here so that failing to is "unavailable"
            database = self.url.split("///", 1)[-1]
            if database and database != ":memory:":
                try:
                    Path(database).parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    message = f"cannot create the SQLite file's folder: {exc}"
                    raise StoreUnavailable(message) from exc
        try:
            with self.engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except (OperationalError, DBAPIError) as exc:
            raise StoreUnavailable(f"cannot migrate {redacted(self.url)}: {exc.orig}") from exc

    def _insert(self, table):
        """An INSERT that skips rows whose key is already stored (SQLite and PostgreSQL)."""
        if self.is_sqlite:
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        return insert(table)

    def write_answers(self, rows: list[dict[str, Any]]) -> int:
        """Store answers; a request id already stored is skipped. Returns the rows written."""
        if not rows:
            return 0
        table = AnswerRecord.__table__
        statement = (
            self._insert(table)
            .on_conflict_do_nothing(index_elements=["request_id"])
            .returning(table.c.request_id)
        )
        try:
            with self.engine.begin() as connection:
                written = connection.execute(statement, [_answer_row(r) for r in rows]).all()
        except (OperationalError, DBAPIError) as exc:
            raise StoreUnavailable(str(exc.orig)) from exc
        return len(written)

    def add_verdict(
        self, request_id: str, label: str, reader: str = "", comment: str | None = None
    ) -> bool:
        """Store a reader's verdict, replacing the same reader's earlier one; False when the
        request id is unknown."""
        now = dt.datetime.now(dt.UTC)
        with Session(self.engine) as session, session.begin():
            if session.get(AnswerRecord, request_id) is None:
                return False
            statement = self._insert(Verdict.__table__).values(
                request_id=request_id, reader=reader, label=label, comment=comment, created_at=now
            )
            statement = statement.on_conflict_do_update(
                index_elements=["request_id", "reader"],
                set_={"label": label, "comment": comment, "created_at": now},
            )
            session.execute(statement)
        return True

    def request_id_for_sop(self, sop_instance_uid_sha256: str) -> str | None:
        with Session(self.engine) as session:
            return session.scalar(
                select(AnswerRecord.request_id)
                .where(AnswerRecord.sop_instance_uid_sha256 == sop_instance_uid_sha256)
                .order_by(AnswerRecord.created_at.desc())
                .limit(1)
            )

    def latest(self, count: int) -> list[dict[str, Any]]:
        """The newest `count` records, oldest first (a monitoring window)."""
        with Session(self.engine) as session:
            rows = session.scalars(
                select(AnswerRecord).order_by(AnswerRecord.created_at.desc()).limit(count)
            ).all()
            return [as_dict(r) for r in reversed(rows)]

    def labelled(self, request_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Answered records with a verdict: each record once, its label the newest verdict."""
        newest = (
            select(Verdict.request_id, func.max(Verdict.id).label("id"))
            .group_by(Verdict.request_id)
            .subquery()
        )
        query = (
            select(AnswerRecord, Verdict.label)
            .join(newest, newest.c.request_id == AnswerRecord.request_id)
            .join(Verdict, Verdict.id == newest.c.id)
            .where(AnswerRecord.refusal_code.is_(None))
            .order_by(AnswerRecord.created_at)
        )
        if request_ids is not None:
            query = query.where(AnswerRecord.request_id.in_(list(request_ids)))
        with Session(self.engine) as session:
            return [
                {**as_dict(record), "verdict": label} for record, label in session.execute(query)
            ]

    def since(self, moment: dt.datetime | None = None) -> Iterator[dict[str, Any]]:
        """Every record from `moment` on, oldest first, with its newest verdict (an audit)."""
        query = select(AnswerRecord).order_by(AnswerRecord.created_at)
        if moment is not None:
            query = query.where(AnswerRecord.created_at >= moment)
        verdicts = {
            row.request_id: row
            for row in Session(self.engine).scalars(select(Verdict).order_by(Verdict.id))
        }
        with Session(self.engine) as session:
            for record in session.scalars(query):
                verdict = verdicts.get(record.request_id)
                yield {
                    **as_dict(record),
                    "verdict": verdict.label if verdict else None,
                    "verdict_reader": verdict.reader if verdict else None,
                }

    def prune(self, days: float) -> int:
        """Delete records (and their verdicts) older than `days`; returns how many."""
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
        with Session(self.engine) as session, session.begin():
            old = select(AnswerRecord.request_id).where(AnswerRecord.created_at < cutoff)
            session.execute(delete(Verdict).where(Verdict.request_id.in_(old)))
            result = session.execute(delete(AnswerRecord).where(AnswerRecord.created_at < cutoff))
        return result.rowcount or 0

    def count(self) -> int:
        with Session(self.engine) as session:
            return session.scalar(select(func.count()).select_from(AnswerRecord)) or 0

    def dispose(self) -> None:
        self.engine.dispose()


def _answer_row(row: dict[str, Any]) -> dict[str, Any]:
    """A record as the table takes it: known columns only, the time as a datetime."""
    clean = {key: row.get(key) for key in ANSWER_COLUMNS}
    if isinstance(clean["created_at"], str):
        clean["created_at"] = dt.datetime.fromisoformat(clean["created_at"])
    clean["warnings"] = clean["warnings"] or []
    return clean


def as_dict(record: AnswerRecord) -> dict[str, Any]:
    return {column: getattr(record, column) for column in ANSWER_COLUMNS}
