"""The record store, on SQLite and on a real PostgreSQL: migrations, idempotent writes, verdicts
(one per reader), windows, audits and pruning."""

from __future__ import annotations

import datetime as dt

import pytest

from engine.records.rows import age_band


def row(request_id: str, **fields) -> dict:
    return {
        "request_id": request_id,
        "created_at": fields.pop("created_at", dt.datetime.now(dt.UTC)),
        "source": "predict",
        "model_version": "v1",
        "upload_sha256": "ab" * 32,
        "size_bytes": 1234,
        "status": 200,
        "warnings": ["a sentence"],
        "probability": 0.8,
        "label": "PNEUMONIA",
        "mean_logit": 1.2,
        "image_stats": {"mean": 100.0},
        "feature_summary": [0.1, -0.2],
        **fields,
    }


def test_migrations_run_twice_and_writes_are_idempotent(store):
    store.migrate()
    assert store.write_answers([row("a"), row("b")]) == 2
    assert store.write_answers([row("a"), row("c")]) == 1  # a replayed batch: stored once
    assert store.count() == 3
    latest = store.latest(2)
    assert [r["request_id"] for r in latest] == ["b", "c"]
    assert latest[0]["warnings"] == ["a sentence"] and latest[0]["feature_summary"] == [0.1, -0.2]


def test_one_verdict_per_reader_the_newest_counts(store):
    store.write_answers([row("a")])
    assert store.add_verdict("a", "NORMAL", "dr one")
    assert store.add_verdict("a", "PNEUMONIA", "dr one", "changed my mind")
    assert not store.add_verdict("unknown", "NORMAL", "dr one")
    labelled = store.labelled()
    assert len(labelled) == 1 and labelled[0]["verdict"] == "PNEUMONIA"
    assert store.add_verdict("a", "NORMAL", "dr two")
    assert store.labelled()[0]["verdict"] == "NORMAL"
    audit = list(store.since())
    assert audit[0]["verdict"] == "NORMAL" and audit[0]["verdict_reader"] == "dr two"


def test_refusals_are_recorded_but_not_labelled(store):
    store.write_answers([row("r", refusal_code="not_chest_xray", status=422, probability=None)])
    store.add_verdict("r", "NORMAL")
    assert store.labelled() == [] and store.latest(1)[0]["refusal_code"] == "not_chest_xray"


def test_pruning_removes_old_records_and_their_verdicts(store):
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
    store.write_answers([row("old", created_at=old), row("new")])
    store.add_verdict("old", "NORMAL")
    assert store.prune(30) == 1
    assert [r["request_id"] for r in store.latest(5)] == ["new"] and store.labelled() == []


def test_sop_instance_uid_is_found_by_its_hash(store):
    store.write_answers([row("d", sop_instance_uid_sha256="cd" * 32)])
    assert store.request_id_for_sop("cd" * 32) == "d"
    assert store.request_id_for_sop("ef" * 32) is None


@pytest.mark.parametrize(
    ("age", "band"),
    [(None, None), (0.5, "<1"), (1.0, "1-5"), (5.9, "1-5"), (6, "6-17"), (64, "18+")],
)
def test_ages_are_kept_as_bands(age, band):
    assert age_band(age) == band
