"""Operations: /metrics, the Open Inference Protocol health vocabulary, JSON logs, load shedding."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest

from tests.app.conftest import make_client


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = (
        rf"^{re.escape(name)}(\{{{re.escape(wanted)}\}})?\s+(\S+)$"
        if labels
        else (rf"^{re.escape(name)}\s+(\S+)$")
    )
    for line in text.splitlines():
        match = re.match(pattern, line)
        if match:
            return float(match.groups()[-1])
    return 0.0


def post(client, data: bytes, **params):
    return client.post("/predict", files={"file": ("x.png", data)}, params=params)


def test_metrics_count_predictions_refusals_and_stages(client, synthetic_xray):
    before = client.get("/metrics").text
    answer = post(client, synthetic_xray).json()
    refused = client.post("/predict", files={"file": ("x.jpg", b"%PDF-1.7 not an image")})
    assert refused.status_code == 415
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = response.text
    label = answer["label"]
    assert metric(after, "cxr_predictions_total", label=label) == (
        metric(before, "cxr_predictions_total", label=label) + 1
    )
    assert metric(after, "cxr_refusals_total", reason="unsupported_format") == (
        metric(before, "cxr_refusals_total", reason="unsupported_format") + 1
    )
    assert metric(after, "cxr_prediction_probability_count") > metric(
        before, "cxr_prediction_probability_count"
    )
    for stage in ("decode", "preprocess", "inference", "overlay", "encode"):
        assert metric(after, "cxr_stage_duration_seconds_count", stage=stage) >= 1, stage
    # The shipped bundle's Grad-CAM graph computes the map inside the inference call.
    assert client.app.state.service.predictor.gradcam_in_graph
    assert metric(after, "cxr_stage_duration_seconds_count", stage="gradcam") == 0
    count = 'cxr_http_request_duration_seconds_count{method="POST",route="/predict",status="200"}'
    assert count in after
    version = client.get("/model").json()["version"]
    assert f'version="{version}"' in after and "cxr_model_info" in after


def test_open_inference_protocol_health_and_metadata(client):
    name = client.get("/model").json()["name"]
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get(f"/v2/models/{name}/ready").json() == {"name": name, "ready": True}
    meta = client.get(f"/v2/models/{name}").json()
    assert meta["name"] == name and meta["platform"] == "onnxruntime" and meta["versions"]
    assert meta["inputs"][0]["datatype"] == "FP32" and meta["inputs"][0]["shape"][0] == -1
    assert meta["outputs"][0]["name"] == "probability"
    for path in ("/v2/models/resnet50", "/v2/models/resnet50/ready"):
        missing = client.get(path)
        assert missing.status_code == 404 and "resnet50" in missing.json()["detail"]


def test_readiness_is_503_while_not_ready(tmp_path):
    with make_client(model_dir=tmp_path / "nowhere") as broken:
        assert broken.get("/v2/health/live").status_code == 200
        ready = broken.get("/v2/health/ready")
        assert ready.status_code == 503 and ready.json() == {"ready": False}
        assert ready.headers["retry-after"]


def test_excess_predictions_are_shed_at_once(shipped_bundle_dir, synthetic_xray):
    release = threading.Event()
    with make_client(model_dir=shipped_bundle_dir, max_inflight=1) as service:
        predictor = service.app.state.service.predictor
        real_predict = predictor.predict

        def held_predict(data, heatmap=True):
            release.wait(30)
            return real_predict(data, heatmap)

        predictor.predict = held_predict
        first: dict = {}
        worker = threading.Thread(target=lambda: first.update(r=post(service, synthetic_xray)))
        worker.start()
        deadline = time.monotonic() + 10
        while "cxr_predictions_in_progress 1.0" not in service.get("/metrics").text:
            assert time.monotonic() < deadline, "the first request never started"
            time.sleep(0.01)
        started = time.perf_counter()
        shed = post(service, synthetic_xray, heatmap="false")
        shed_seconds = time.perf_counter() - started
        assert shed.status_code == 503 and shed.headers["retry-after"] == "1"
        assert "busy" in shed.json()["detail"]
        # the upload was read before the answer, so the connection stays open for the retry
        assert "connection" not in shed.headers
        assert shed_seconds < 1.0  # answered at once, not after the held request
        assert service.get("/health").status_code == 200  # never shed
        assert service.get("/v2/health/ready").status_code == 200
        release.set()
        worker.join(30)
        assert first["r"].status_code == 200
        text = service.get("/metrics").text
        assert metric(text, "cxr_refusals_total", reason="overloaded") >= 1
        assert post(service, synthetic_xray, heatmap="false").status_code == 200


def test_json_logs_one_object_per_line_without_image_bytes(
    shipped_bundle_dir, synthetic_xray, capsys
):
    with make_client(model_dir=shipped_bundle_dir, log_format="json") as service:
        answer = post(service, synthetic_xray, heatmap="false").json()
        service.post("/predict", files={"file": ("x.gif", b"GIF89a" + b"\x00" * 30)})
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    access = [r for r in records if r.get("path") == "/predict"]
    assert len(access) == 2
    ok, refused = access
    assert {"time", "level", "request_id", "method", "status", "duration_ms"} <= ok.keys()
    assert ok["label"] == answer["label"] and ok["probability"] == round(answer["probability"], 4)
    assert ok["request_id"] == answer["request_id"]
    assert refused["status"] == 415 and refused["refusal"] == "unsupported_format"
    assert max(len(line) for line in lines) < 2000  # no image bytes, no heatmaps


@pytest.fixture(autouse=True, scope="module")
def _plain_logs_afterwards():
    yield
    from app.logs import configure_logging

    configure_logging("INFO", "text")


def test_metrics_can_be_turned_off(shipped_bundle_dir, synthetic_xray):
    from app.metrics import PROBABILITY

    before = PROBABILITY.collect()[0].samples
    with make_client(model_dir=shipped_bundle_dir, metrics_enabled=False) as quiet:
        assert quiet.get("/metrics").status_code == 404
        assert post(quiet, synthetic_xray, heatmap="false").status_code == 200
    assert PROBABILITY.collect()[0].samples == before


def test_answers_carry_the_server_time(client, synthetic_xray):
    """Server-Timing (devtools show it; the load benchmark separates server and client time)."""
    for response in (client.get("/health"), post(client, synthetic_xray, heatmap="false")):
        timing = response.headers["server-timing"]
        assert re.fullmatch(r"app;dur=\d+\.\d", timing), timing
        assert float(timing.split("=")[1]) >= 0
