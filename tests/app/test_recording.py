"""Every answer on record: from /predict (answers and refusals), batch scoring and the DICOM
node's engine path; nothing identifying stored; RECORD_ANSWERS=off records nothing; while the
database is down records wait on disk and arrive once when it returns, across a restart too."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from app.recording import AnswerLog
from engine.records import RecordStore
from tests import dicom_files as dcm
from tests.app.conftest import make_client
from tests.images import jpeg_bytes, png_bytes, synthetic_film
from tests.records_stores import fresh_postgres_store

SAMPLE = (Path(__file__).resolve().parents[2] / "examples" / "pneumonia.jpg").read_bytes()


def _client(tmp_path: Path, **overrides):
    url = f"sqlite:///{tmp_path / 'records.sqlite3'}"
    return make_client(database_url=url, records_spool_dir=tmp_path / "spool", **overrides), url


def test_answers_and_refusals_are_recorded(tmp_path, shipped_bundle_dir):
    client, url = _client(tmp_path, model_dir=shipped_bundle_dir)
    with client:
        answer = client.post("/predict", files={"file": ("s.jpg", SAMPLE)}).json()
        refused = client.post("/predict", files={"file": ("x.png", b"\x89PNG\r\n\x1a\nno")})
        assert refused.status_code in (400, 415)
        client.app.state.service.answers.flush()
    rows = {r["request_id"]: r for r in RecordStore(url).latest(10)}
    assert len(rows) == 2
    kept = rows[answer["request_id"]]
    assert kept["probability"] == answer["probability"] and kept["label"] == answer["label"]
    assert kept["population_score"] == answer["population_score"]
    assert kept["format"] == "JPEG" and kept["source"] == "predict" and kept["status"] == 200
    assert kept["mean_logit"] is not None and len(kept["feature_summary"]) == 8
    assert set(kept["image_stats"]) == {"mean", "std", "p05", "p50", "p95"}
    refusal = next(r for r in rows.values() if r["request_id"] != answer["request_id"])
    assert refusal["refusal_code"] in ("unsupported_format", "undecodable")
    assert refusal["probability"] is None


def test_a_record_holds_nothing_that_identifies_the_patient(tmp_path, shipped_bundle_dir):
    film = synthetic_film(3, 600, 500)
    dicom = dcm.grayscale_dicom(film, bits_stored=12, PatientAge="004Y")
    client, url = _client(tmp_path, model_dir=shipped_bundle_dir, ood_guard=False)
    with client:
        response = client.post("/predict", files={"file": ("f.dcm", dicom)})
        assert response.status_code == 200, response.text
        client.app.state.service.answers.flush()
    database = (tmp_path / "records.sqlite3").read_bytes()
    stored = json.dumps(list(RecordStore(url).since()), default=str)
    for value in dcm.PATIENT.values():
        assert value not in stored and value.encode() not in database
    record = RecordStore(url).latest(1)[0]
    assert record["age_band"] == "1-5" and record["modality"] is not None
    assert "004" not in stored


def test_record_answers_off_records_nothing(tmp_path, shipped_bundle_dir):
    client, _ = _client(tmp_path, model_dir=shipped_bundle_dir, record_answers=False)
    with client:
        assert client.post("/predict", files={"file": ("s.jpg", SAMPLE)}).status_code == 200
        assert client.app.state.service.answers is None
        assert (
            client.post("/feedback", json={"request_id": "x", "label": "NORMAL"}).status_code == 503
        )
    assert not (tmp_path / "records.sqlite3").exists()


def _rows(count: int, prefix: str) -> list[dict]:
    import datetime as dt

    return [
        {
            "request_id": f"{prefix}{i}",
            "created_at": dt.datetime.now(dt.UTC),
            "source": "predict",
            "model_version": "v",
            "upload_sha256": "0" * 64,
            "size_bytes": 1,
            "status": 200,
            "warnings": [],
        }
        for i in range(count)
    ]


def test_records_wait_on_disk_while_postgres_is_down_and_arrive_once(tmp_path, postgres):
    store = fresh_postgres_store(postgres, "outage")
    log = AnswerLog(store.url, tmp_path / "spool", queue_size=50, store=store)
    for row in _rows(30, "before"):
        log.submit(row)
    assert log.flush() and store.count() == 30
    postgres.stop()
    try:
        for row in _rows(120, "during"):  # more than the queue holds: some spill at once
            log.submit(row)
        assert log.flush(30)
        assert log.spool.rows() == 120 and not log.available
    finally:
        postgres.start()
    deadline = time.monotonic() + 30
    while log.spool.files() and time.monotonic() < deadline:
        time.sleep(0.2)
    log.close()
    assert log.spool.files() == []
    fresh = RecordStore(store.url)
    assert fresh.count() == 150  # none lost, none twice
    ids = {r["request_id"] for r in fresh.since()}
    assert ids == {f"before{i}" for i in range(30)} | {f"during{i}" for i in range(120)}


def test_spooled_records_survive_a_restart(tmp_path):
    url = f"sqlite:///{tmp_path / 'db' / 'records.sqlite3'}"
    spool = tmp_path / "spool"
    unreachable = AnswerLog("sqlite:////proc/no/such/place.sqlite3", spool)
    for row in _rows(10, "r"):
        unreachable.submit(row)
    assert unreachable.flush()
    unreachable.close()
    assert sum(1 for _ in spool.glob("*.jsonl")) >= 1
    restarted = AnswerLog(url, spool)  # the same spool, the database back
    deadline = time.monotonic() + 20
    while restarted.spool.files() and time.monotonic() < deadline:
        time.sleep(0.1)
    restarted.close()
    assert RecordStore(url).count() == 10


@pytest.mark.parametrize("make", [png_bytes, jpeg_bytes])
def test_batch_scoring_records_its_answers(tmp_path, shipped_bundle_dir, make, monkeypatch):
    from app.__main__ import main

    url = f"sqlite:///{tmp_path / 'records.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("RECORDS_SPOOL_DIR", str(tmp_path / "spool"))
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.img").write_bytes(make(synthetic_film(1)))
    (tmp_path / "in" / "b.png").write_bytes(png_bytes(synthetic_film(2)))
    main(["predict", str(tmp_path / "in"), "--out", str(tmp_path / "out.csv"),
          "--model", str(shipped_bundle_dir)])  # fmt: skip
    records = RecordStore(url).latest(10)
    assert {r["source"] for r in records} == {"batch"} and len(records) >= 1


def test_an_unwritable_spool_folder_does_not_stop_recording(tmp_path):
    url = f"sqlite:///{tmp_path / 'records.sqlite3'}"
    log = AnswerLog(url, Path("/proc/no/such/spool"))
    assert log.spool is None
    for row in _rows(5, "s"):
        log.submit(row)
    assert log.flush()
    log.close()
    assert RecordStore(url).count() == 5
