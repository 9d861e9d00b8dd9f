"""POST /feedback, GET /monitoring and its page, the CSV import and the audit export."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from engine.records import RecordStore
from engine.records.rows import sha256
from tests.app.conftest import make_client
from tests.images import jpeg_bytes, synthetic_film

SAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, shipped_bundle_dir):
    folder = tmp_path_factory.mktemp("records")
    url = f"sqlite:///{folder / 'records.sqlite3'}"
    with make_client(
        model_dir=shipped_bundle_dir,
        database_url=url,
        records_spool_dir=folder / "spool",
        api_key="secret",
    ) as client:
        yield client, url


def post(client, data: bytes, name: str = "f.jpg") -> dict:
    response = client.post(
        "/predict",
        files={"file": (name, data)},
        params={"heatmap": "false"},
        headers={"X-API-Key": "secret"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def feedback(client, body: dict, key: str = "secret"):
    return client.post("/feedback", json=body, headers={"X-API-Key": key})


def test_feedback_stores_replaces_and_refuses(recorded):
    client, url = recorded
    answer = post(client, (SAMPLES / "pneumonia.jpg").read_bytes())
    rid = answer["request_id"]
    first = feedback(client, {"request_id": rid, "label": "NORMAL", "reader": "dr a"})
    assert first.status_code == 201 and first.json()["label"] == "NORMAL"
    again = feedback(client, {"request_id": rid, "label": "PNEUMONIA", "reader": "dr a"})
    assert again.status_code == 201
    assert RecordStore(url).labelled([rid])[0]["verdict"] == "PNEUMONIA"
    assert feedback(client, {"request_id": "nope", "label": "NORMAL"}).status_code == 404
    bad = feedback(client, {"request_id": rid, "label": "maybe"})
    assert bad.status_code == 422 and isinstance(bad.json()["detail"], str)
    assert feedback(client, {"request_id": rid, "label": "NORMAL"}, key="wrong").status_code == 401


def test_monitoring_reports_the_window_and_realised_figures(recorded):
    client, _ = recorded
    films = [jpeg_bytes(synthetic_film(i, 700, 600, pneumonia=i % 2 == 1)) for i in range(40)]
    answers = [post(client, film) for film in films]
    for answer in answers[:20]:
        feedback(client, {"request_id": answer["request_id"], "label": answer["label"]})
    response = client.get("/monitoring", params={"window": 30}, headers={"X-API-Key": "secret"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["window"] == 30 and body["rates"]["answers"] == 30
    assert body["drift"]["threshold"] == 3.0 and isinstance(body["drift"]["alarm"], bool)
    assert set(body["drift"]["histograms"]) >= {"probability", "ood_score"}
    assert 0.5 <= body["estimated_accuracy"] <= 1.0
    realised = body["realised"]
    assert realised["n"] >= 10 and realised["accuracy"]["value"] == 1.0  # readers agreed
    low, high = realised["accuracy"]["ci95"]
    assert low < 1.0 <= high + 1e-12
    assert body["card"]["n"] == 295
    metrics = client.get("/metrics").text
    assert "cxr_drift_threshold 3.0" in metrics and "cxr_realised_verdicts" in metrics
    assert client.get("/monitoring").status_code == 401


def test_the_monitoring_page_is_self_contained(recorded):
    client, _ = recorded
    page = client.get("/monitoring/page")
    assert page.status_code == 200 and "/monitoring?window=" in page.text
    assert "http://" not in page.text and "https://" not in page.text


def test_feedback_import_by_request_id_and_sop_instance_uid(tmp_path, recorded, monkeypatch):
    from app.__main__ import main

    client, url = recorded
    answer = post(client, (SAMPLES / "normal.png").read_bytes(), "n.png")
    assert client.app.state.service.answers.flush()  # the record is written, not still queued
    store = RecordStore(url)
    uid = "1.2.826.0.1.3680043.8.498.1"
    store.write_answers(
        [{**store.latest(1)[0], "request_id": "from-node", "sop_instance_uid_sha256": sha256(uid)}]
    )
    sheet = tmp_path / "ris.csv"
    with open(sheet, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["request_id", "sop_instance_uid", "label", "reader"])
        writer.writerow([answer["request_id"], "", "NORMAL", "ris"])
        writer.writerow(["", uid, "pneumonia", "ris"])
        writer.writerow(["unknown-id", "", "NORMAL", "ris"])
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(["feedback", "import", str(sheet)]) == 1  # one row matched nothing
    verdicts = {r["request_id"]: r["verdict"] for r in store.labelled()}
    assert verdicts[answer["request_id"]] == "NORMAL" and verdicts["from-node"] == "PNEUMONIA"
    out = tmp_path / "audit.csv"
    assert main(["records", "export", "--since", "2020-01-01", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert any(r["request_id"] == "from-node" and r["verdict"] == "PNEUMONIA" for r in rows)
    assert main(["records", "export", "--format", "parquet", "--out", str(tmp_path / "a.pq")]) == 0
    assert (tmp_path / "a.pq").stat().st_size > 0


def test_realised_figures_agree_with_training_evaluate():
    """The same formulas as `training evaluate` (sklearn's confusion and AUC, the shared ECE)."""
    from app.monitoring.report import realised
    from training.calibration import expected_calibration_error
    from training.metrics import classification_metrics

    rng = np.random.default_rng(3)
    truth = rng.random(300) < 0.5
    probability = np.clip(truth * 0.6 + rng.random(300) * 0.5, 0, 1).round(2)  # with ties
    rows = [
        {
            "probability": float(p),
            "label": "PNEUMONIA" if p >= 0.5 else "NORMAL",
            "verdict": "PNEUMONIA" if t else "NORMAL",
        }
        for p, t in zip(probability, truth, strict=True)
    ]
    ours = realised(rows, "PNEUMONIA")
    theirs = classification_metrics(truth.astype(int), probability, 0.5)
    for key, name in (("accuracy", "accuracy"), ("sensitivity", "sensitivity"),
                      ("specificity", "specificity"), ("auc", "roc_auc")):  # fmt: skip
        assert round(ours[key]["value"], 3) == round(theirs[name], 3)
    assert ours["ece"]["value"] == expected_calibration_error(probability, truth)
