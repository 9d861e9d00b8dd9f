"""The record of every answer and the readers' verdicts: one SQL store (SQLite by default,
PostgreSQL in compose and Kubernetes), its schema owned by Alembic migrations.

The service writes answers (app.recording: a queue, a writer thread and a disk spool, so recording
never delays or fails an answer); readers' verdicts arrive through POST /feedback or a CSV import;
monitoring reads windows of answers; `training calibrate --from-records` reads logits and
verdicts. A record never holds pixels, names, identifiers or dates of birth.
"""

from engine.records.schema import AnswerRecord, Verdict
from engine.records.store import RecordStore, StoreUnavailable

__all__ = ["AnswerRecord", "RecordStore", "StoreUnavailable", "Verdict"]
