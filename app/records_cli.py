"""`python -m app feedback import FILE` and `python -m app records export`: readers' verdicts
from a RIS export, and the record for an audit (DATABASE_URL from the environment)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
from pathlib import Path

from engine.records import RecordStore
from engine.records.rows import sha256
from engine.records.store import VERDICT_LABELS, redacted

ID_COLUMNS = ("request_id", "sop_instance_uid")
LABEL_WORDS = {"normal": "NORMAL", "0": "NORMAL", "pneumonia": "PNEUMONIA", "1": "PNEUMONIA"}


def _store() -> RecordStore:
    from app.settings import Settings

    store = RecordStore(Settings().database_url)
    store.migrate()
    return store


def import_feedback(path: Path, store: RecordStore, reader: str = "") -> dict[str, int]:
    """Verdicts from a CSV with `request_id` or `sop_instance_uid`, and `label` (NORMAL or
    PNEUMONIA, or 0/1), optional `reader` and `comment`. Rows that match no answer are counted
    and reported, never guessed."""
    counts = {"stored": 0, "unknown": 0, "bad_label": 0}
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "label" not in rows[0] or not set(ID_COLUMNS) & set(rows[0]):
        raise SystemExit(f"{path.name} needs a label column and request_id or sop_instance_uid")
    for row in rows:
        label = LABEL_WORDS.get(str(row.get("label", "")).strip().lower())
        if label not in VERDICT_LABELS:
            counts["bad_label"] += 1
            continue
        request_id = (row.get("request_id") or "").strip()
        if not request_id and row.get("sop_instance_uid"):
            uid = row["sop_instance_uid"].strip().upper()
            request_id = store.request_id_for_sop(sha256(uid)) or ""
        who = (row.get("reader") or reader or "").strip()
        if request_id and store.add_verdict(request_id, label, who, row.get("comment") or None):
            counts["stored"] += 1
        else:
            counts["unknown"] += 1
    return counts


def export_records(store: RecordStore, out, since: dt.datetime | None, form: str) -> int:
    """Every record from `since` on, with its newest verdict, as CSV or Parquet."""
    rows = list(store.since(since))
    for row in rows:
        for key, value in row.items():
            if isinstance(value, dt.datetime):
                row[key] = value.isoformat()
            elif isinstance(value, (dict, list)):
                row[key] = json.dumps(value) if value else ""
    if form == "parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise SystemExit(
                "Parquet needs pyarrow (pip install pyarrow); use --format csv"
            ) from None
        pq.write_table(pa.Table.from_pylist(rows), out)
        return len(rows)
    handle = open(out, "w", newline="") if out != "-" else sys.stdout  # noqa: SIM115
    fields = list(rows[0]) if rows else ["request_id"]
    writer = csv.DictWriter(handle, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    if handle is not sys.stdout:
        handle.close()
    return len(rows)


def feedback_command(args) -> int:
    store = _store()
    counts = import_feedback(Path(args.file), store, args.reader)
    print(
        f"{counts['stored']} verdict(s) stored, {counts['unknown']} matched no recorded answer, "
        f"{counts['bad_label']} had a label that is not NORMAL or PNEUMONIA "
        f"({redacted(store.url)})",
        file=sys.stderr,
    )
    return 0 if counts["unknown"] == counts["bad_label"] == 0 else 1


def records_command(args) -> int:
    store = _store()
    since = None
    if args.since:
        since = dt.datetime.fromisoformat(args.since)
        if since.tzinfo is None:
            since = since.replace(tzinfo=dt.UTC)
        if store.is_sqlite:  # SQLite keeps times without their zone (UTC)
            since = since.astimezone(dt.UTC).replace(tzinfo=None)
    out = args.out or ("-" if args.format == "csv" else "records.parquet")
    count = export_records(store, out, since, args.format)
    print(f"{count} record(s) exported to {out}", file=sys.stderr)
    return 0
