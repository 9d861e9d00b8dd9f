"""Every answer on record, without delaying or failing one.

A route hands its record to `AnswerLog.submit`, which only puts it on a bounded queue (or, when
the queue is full, appends it to the disk spool). One writer thread takes batches off the queue
and writes them to the store; while the store is unreachable the batches go to the spool, and
spooled files are replayed, oldest first, as soon as it answers again, after a restart too. The
store skips a request id it already holds, so a batch replayed after a crash is stored once.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from prometheus_client import Counter, Gauge

from engine.records import RecordStore, StoreUnavailable
from engine.records.store import redacted

log = logging.getLogger(__name__)

BATCH = 200
LINGER_SECONDS = 0.5
RETRY_SECONDS = 2.0
PRUNE_EVERY_SECONDS = 3600.0

WRITTEN = Counter("cxr_records_written_total", "Answer records written to the database.")
SPOOLED = Counter(
    "cxr_records_spooled_total", "Answer records put on the disk spool (database unreachable)."
)
LOST = Counter(
    "cxr_records_lost_total", "Answer records that could be neither written nor spooled."
)
PENDING = Gauge(
    "cxr_records_pending",
    "Answer records not yet in the database (queued in memory or spooled on disk).",
    multiprocess_mode="livesum",
)
STORE_UP = Gauge(
    "cxr_records_store_up",
    "1 while the record database answers, 0 while records wait on disk.",
    multiprocess_mode="livemin",
)


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} in a record")


class Spool:
    """Batches of records as JSON-lines files, written whole (temp file, then rename)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def put(self, rows: list[dict[str, Any]]) -> None:
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.jsonl"
        staging = self.folder / f".{name}"
        with open(staging, "w") as handle:
            for row in rows:
                handle.write(json.dumps(row, default=_json_default) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        staging.rename(self.folder / name)

    def files(self) -> list[Path]:
        return sorted(self.folder.glob("[0-9]*.jsonl"))

    def rows(self) -> int:
        return sum(sum(1 for _ in path.open()) for path in self.files())

    @staticmethod
    def read(path: Path) -> list[dict[str, Any]]:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class AnswerLog:
    """The service's record keeper: `submit` from any thread; `close` drains it."""

    def __init__(
        self,
        url: str,
        spool_dir: Path,
        queue_size: int = 2000,
        retention_days: float = 0.0,
        store: RecordStore | None = None,
    ) -> None:
        self.url = url
        self.store = store or RecordStore(url)
        try:
            self.spool: Spool | None = Spool(spool_dir)
        except OSError as exc:  # answers go on; records that cannot be written are counted lost
            log.error(
                "the record spool %s cannot be made (%s): records wait only in memory",
                spool_dir,
                exc,
            )
            self.spool = None
        self.queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=queue_size)
        self.retention_days = retention_days
        self.migrated = False
        self.available = False
        self._stop = threading.Event()
        self._spool_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="answer-records", daemon=True)
        self._last_prune = 0.0
        self._busy = False
        PENDING.set(self.spool.rows() if self.spool else 0)
        self._thread.start()

    def submit(self, row: dict[str, Any]) -> None:
        """Queue a record; never blocks and never raises (a full queue spills to disk)."""
        try:
            self.queue.put_nowait(row)
            PENDING.inc()
        except queue.Full:
            self._to_spool([row])
            PENDING.inc()

    def _to_spool(self, rows: list[dict[str, Any]]) -> None:
        try:
            if self.spool is None:
                raise OSError("no spool folder")
            with self._spool_lock:
                self.spool.put(rows)
            SPOOLED.inc(len(rows))
        except OSError as exc:
            LOST.inc(len(rows))
            log.error("%d answer record(s) lost: the spool cannot be written (%s)", len(rows), exc)

    def _connect(self) -> bool:
        """Migrate once the store answers; True while it does."""
        if not self.migrated:
            try:
                self.store.migrate()
                self.migrated = True
                log.info("answers are recorded in %s", redacted(self.url))
            except (StoreUnavailable, OSError) as exc:
                self._set_available(False, str(exc))
                return False
        return True

    def _set_available(self, available: bool, reason: str = "") -> None:
        if available != self.available:
            if available:
                log.info("the record database answers again; spooled records are being written")
            else:
                log.warning("the record database is unreachable (%s): records wait on disk", reason)
        self.available = available
        STORE_UP.set(1 if available else 0)

    def _write(self, rows: list[dict[str, Any]]) -> bool:
        if not self._connect():
            return False
        try:
            written = self.store.write_answers(rows)
        except StoreUnavailable as exc:
            self._set_available(False, str(exc).splitlines()[0][:200])
            return False
        self._set_available(True)
        WRITTEN.inc(written)
        return True

    def _spooled(self) -> list[Path]:
        return self.spool.files() if self.spool is not None else []

    def _replay(self) -> None:
        """Write spooled batches, oldest first, while the store answers."""
        for path in self._spooled():
            rows = Spool.read(path)
            if not self._write(rows):
                return
            path.unlink()
            PENDING.dec(len(rows))

    def _take(self, timeout: float) -> list[dict[str, Any]]:
        """A batch: the first record within `timeout`, then whatever arrives within LINGER
        seconds (up to BATCH). One transaction per batch instead of one per answer: at 100
        answers a second the database's per-transaction work was measured as a tenth of the
        replica's throughput."""
        rows: list[dict[str, Any]] = []
        try:
            rows.append(self.queue.get(timeout=timeout))
            self._busy = True
            deadline = time.monotonic() + LINGER_SECONDS
            while len(rows) < BATCH:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop.is_set():
                    break
                rows.append(self.queue.get(timeout=remaining))
        except queue.Empty:
            pass
        return rows

    def _run(self) -> None:
        self._busy = True
        self._connect()  # migrate at once, so readers (feedback, monitoring) find the tables
        self._busy = False
        next_retry = 0.0
        while not self._stop.is_set() or not self.queue.empty():
            rows = self._take(0.2)
            self._busy = bool(rows)
            now = time.monotonic()
            if rows:
                if (self.available or now >= next_retry) and self._write(rows):
                    PENDING.dec(len(rows))
                else:
                    self._to_spool(rows)
                    next_retry = max(next_retry, now + RETRY_SECONDS)
            self._busy = False
            if self._spooled() and now >= next_retry and not self._stop.is_set():
                self._replay()
                if self._spooled():
                    next_retry = now + RETRY_SECONDS
            if self.retention_days and now - self._last_prune > PRUNE_EVERY_SECONDS:
                self._last_prune = now
                self._prune()

    def _prune(self) -> None:
        if not self.available:
            return
        try:
            removed = self.store.prune(self.retention_days)
        except Exception as exc:  # a failed prune is retried at the next hour
            log.warning("pruning old records failed: %s", exc)
            return
        if removed:
            log.info("pruned %d record(s) older than %g days", removed, self.retention_days)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued record is written or spooled; True if that happened in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.queue.empty() and not self._busy:
                return True
            time.sleep(0.02)
        return False

    def close(self, timeout: float = 10.0) -> None:
        """Write or spool what is queued, then stop."""
        self._stop.set()
        self._thread.join(timeout)
        self.store.dispose()


def answer_log_from(settings: Any) -> AnswerLog | None:
    """The record keeper the settings ask for (None with RECORD_ANSWERS=off)."""
    if not settings.record_answers:
        return None
    return AnswerLog(
        settings.database_url,
        settings.records_spool_dir,
        settings.records_queue_size,
        settings.records_retention_days,
    )


def refusal_record(
    exc: Exception, request_id: str, source: str, model_version: str, data: bytes
) -> dict[str, Any]:
    """The record of a refused film, named as the HTTP service names the refusal."""
    from app.refusals import status_and_reason
    from engine.records.rows import refusal_row

    status, code = status_and_reason(exc)
    return refusal_row(
        request_id, source, model_version, data, code, status, getattr(exc, "ood_score", None)
    )
