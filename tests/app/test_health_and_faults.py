"""/health, /model and /docs; and a service whose bundle is missing, corrupt or mismatched."""

from __future__ import annotations

import logging
import re
import shutil

import pytest

from tests.app.conftest import make_client


def test_health_ok_once_loaded(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["model_version"]


def test_docs_and_openapi_describe_every_route(client):
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    predict = spec["paths"]["/predict"]["post"]
    assert {"200", "400", "413", "415", "422", "503"} <= set(predict["responses"])
    assert "/health" in spec["paths"] and "/model" in spec["paths"]


@pytest.fixture
def bundle_copy(tmp_path, shipped_bundle_dir):
    target = tmp_path / "bundle"
    shutil.copytree(shipped_bundle_dir, target)
    return target


def _assert_not_ready(model_dir, reason: str, synthetic_xray: bytes) -> None:
    with make_client(model_dir=model_dir) as broken:
        health = broken.get("/health")
        assert health.status_code == 503
        assert health.json()["status"] == "error"
        assert reason in health.json()["detail"]
        assert health.headers["retry-after"]
        predict = broken.post("/predict", files={"file": ("x.png", synthetic_xray)})
        assert predict.status_code == 503
        assert reason in predict.json()["detail"]
        assert predict.headers["retry-after"]
        assert broken.get("/model").status_code == 503
        for response in (health, predict):  # the README promises no server paths in answers
            assert str(model_dir) not in response.text and "/" not in response.json()["detail"]


def test_missing_bundle(tmp_path, synthetic_xray):
    _assert_not_ready(tmp_path / "nowhere", "not found", synthetic_xray)


def test_corrupt_onnx_file(bundle_copy, synthetic_xray):
    with open(bundle_copy / "model.onnx", "r+b") as handle:
        handle.seek(100)
        handle.write(b"garbage!")
    _assert_not_ready(bundle_copy, "does not match its model card", synthetic_xray)


def test_missing_keras_file(bundle_copy, synthetic_xray):
    (bundle_copy / "model.keras").unlink()
    _assert_not_ready(bundle_copy, "missing model.keras", synthetic_xray)


def test_card_that_is_not_json(bundle_copy, synthetic_xray):
    (bundle_copy / "model_card.json").write_text("{ not json")
    _assert_not_ready(bundle_copy, "not valid JSON", synthetic_xray)


def test_error_bodies_carry_no_paths_or_tracebacks(bundle_copy, synthetic_xray):
    with make_client(model_dir=bundle_copy) as service:
        for data in (b"", b"GIF89a" + b"\x00" * 20, synthetic_xray[:300]):
            text = service.post("/predict", files={"file": ("x.png", data)}).text
            assert "Traceback" not in text and "/work/" not in text and ".py" not in text


def test_docs_page_needs_no_internet(client):
    """Swagger UI's assets come from the service itself, not from a CDN."""
    page = client.get("/docs").text
    assert "cdn.jsdelivr.net" not in page and "unpkg.com" not in page
    script = page.split('src="', 1)[1].split('"', 1)[0]
    assert script.startswith("/") and client.get(script).status_code == 200


def test_first_start_says_it_is_loading_then_where_and_when_it_is_ready(shipped_bundle_dir, caplog):
    caplog.set_level(logging.INFO, logger="app.state")
    with make_client(model_dir=shipped_bundle_dir, public_url="http://127.0.0.1:8123") as service:
        assert service.get("/health").status_code == 200
    messages = [r.getMessage() for r in caplog.records if r.name == "app.state"]
    loading = next(i for i, m in enumerate(messages) if m.startswith("loading the model"))
    ready = next(i for i, m in enumerate(messages) if m.startswith("ready at "))
    assert loading < ready
    assert "http://127.0.0.1:8123/" in messages[ready]
    assert re.search(r"loaded in \d+\.\d s", messages[ready])
