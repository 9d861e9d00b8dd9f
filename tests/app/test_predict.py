"""POST /predict: the contract fields, heatmaps, and every documented error status."""

from __future__ import annotations

import base64
import io

import cv2
import numpy as np
import pytest
from PIL import Image

from engine import ModelBundle
from engine.gradcam import GradCam
from imaging import preprocess_bytes
from tests.app.conftest import make_client
from tests.images import jpeg_bytes, png_bytes, synthetic_film

UPLOADS = {
    "small.png": png_bytes(synthetic_film(1, 300, 260)),
    "large.jpg": jpeg_bytes(synthetic_film(2, 2000, 1600, pneumonia=True)),
    "wide.jpg": jpeg_bytes(synthetic_film(3, 900, 1400)),
    "rgb.png": png_bytes(np.stack([synthetic_film(4, 500, 420)] * 3, axis=-1)),
}

CONTRACT_FIELDS = {"probability", "label", "threshold", "heatmap", "model_version"}


def post(client, data: bytes, name: str = "xray.jpg", params=None, headers=None):
    return client.post("/predict", files={"file": (name, data)}, params=params, headers=headers)


def test_uploads_get_contract_fields_and_a_png_heatmap(client):
    for name, data in UPLOADS.items():
        response = post(client, data, name)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body.keys() >= CONTRACT_FIELDS
        assert 0.0 <= body["probability"] <= 1.0
        expected = "PNEUMONIA" if body["probability"] >= body["threshold"] else "NORMAL"
        assert body["label"] == expected
        assert isinstance(body["heatmap_empty"], bool)
        assert body["heatmap_strength"] == pytest.approx(body["probability"])
        # synthetic films are nobody's children: the population check may say so, nothing else
        assert all("looks like an adult's from its pixels" in w for w in body["warnings"])
        assert 0.0 <= body["population_score"] <= 1.0
        png = base64.b64decode(body["heatmap"], validate=True)
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        overlay = Image.open(io.BytesIO(png))
        assert overlay.mode == "RGB"
        upload_aspect = body["image"]["width"] / body["image"]["height"]
        assert abs(overlay.width / overlay.height - upload_aspect) < 0.02


def test_heatmap_false_returns_null(client, synthetic_xray):
    response = post(client, synthetic_xray, "x.png", params={"heatmap": "false"})
    assert response.status_code == 200
    assert response.json()["heatmap"] is None
    assert response.json()["heatmap_empty"] is None
    assert response.json()["heatmap_strength"] is None
    assert "gradcam" not in response.json()["timings_ms"]


def test_format_comes_from_the_bytes_not_the_name(client, synthetic_xray):
    assert post(client, synthetic_xray, "scan.jpg").json()["image"]["format"] == "PNG"
    assert post(client, b"just text", "scan.png").status_code == 415


def test_service_probability_matches_keras_on_the_same_tensor(client):
    """ONNX through HTTP == the retained Keras model on the same preprocessed tensor, 1e-5."""
    bundle = client.app.state.service.predictor.bundle
    reference = GradCam(bundle.keras_model(), bundle.card.gradcam, bundle.preprocessing.image_size)
    for name, data in UPLOADS.items():
        served = post(client, data, params={"heatmap": "false"}).json()
        tensor = preprocess_bytes(data, bundle.preprocessing)
        _, keras_probability = reference.with_probability(tensor)
        assert abs(served["probability"] - keras_probability) <= 1e-5, name


def test_error_statuses(client, synthetic_xray):
    cases = {
        415: post(client, b"<html><body>not an x-ray</body></html>", "a.jpg"),
        400: post(client, synthetic_xray[: len(synthetic_xray) // 2], "half.png"),
        422: client.post("/predict", data={"other": "x"}),
    }
    for status, response in cases.items():
        assert response.status_code == status, (status, response.text)
        assert "detail" in response.json()
    assert client.get("/health").status_code == 200


def test_two_files_in_one_request_are_refused(client, synthetic_xray):
    files = [("file", ("a.png", synthetic_xray)), ("file", ("b.png", synthetic_xray))]
    response = client.post("/predict", files=files)
    assert response.status_code == 422
    assert "exactly one file" in response.json()["detail"]


def test_byte_and_pixel_limits_give_413(shipped_bundle_dir, synthetic_xray):
    with make_client(model_dir=shipped_bundle_dir, max_upload_bytes=1000) as small:
        response = post(small, synthetic_xray + b"\x00" * 5000, "big.png")
        assert response.status_code == 413
        assert "limit" in response.json()["detail"]
    with make_client(model_dir=shipped_bundle_dir, max_image_pixels=100 * 100) as few:
        response = post(few, synthetic_xray, "many-pixels.png")
        assert response.status_code == 413
        assert "pixels" in response.json()["detail"]


def test_api_key_is_enforced_when_set(shipped_bundle_dir, synthetic_xray):
    with make_client(model_dir=shipped_bundle_dir, api_key="s3cret") as locked:
        assert post(locked, synthetic_xray).status_code == 401
        assert post(locked, synthetic_xray, headers={"X-API-Key": "wrong"}).status_code == 401
        ok = post(locked, synthetic_xray, headers={"X-API-Key": "s3cret"}, params={"heatmap": 0})
        assert ok.status_code == 200
        assert locked.get("/health").status_code == 200  # health stays open


def test_threshold_override(shipped_bundle_dir, synthetic_xray):
    with make_client(model_dir=shipped_bundle_dir, threshold=0.0) as always:
        body = post(always, synthetic_xray, params={"heatmap": "false"}).json()
        assert body["threshold"] == 0.0 and body["label"] == "PNEUMONIA"


def test_request_id_header_and_field(client, synthetic_xray):
    response = post(client, synthetic_xray, params={"heatmap": "false"})
    assert response.headers["x-request-id"] == response.json()["request_id"]


def test_bundle_card_and_served_model_agree(client, shipped_bundle_dir):
    body = client.get("/model").json()
    assert body["version"] == ModelBundle.load(shipped_bundle_dir).version
    assert body["served"]["threshold"] == body["threshold"]["value"]
    assert np.isfinite(body["threshold"]["value"])
    assert tuple(body["labels"]) == ModelBundle.load(shipped_bundle_dir).labels


def test_gradcam_can_be_turned_off(shipped_bundle_dir, synthetic_xray):
    with make_client(model_dir=shipped_bundle_dir, gradcam_enabled=False) as light:
        assert light.app.state.service.predictor.gradcam is None
        plain = post(light, synthetic_xray)
        assert plain.status_code == 200 and plain.json()["heatmap"] is None
        refused = post(light, synthetic_xray, params={"heatmap": "true"})
        assert refused.status_code == 400 and "GRADCAM_ENABLED" in refused.json()["detail"]


def test_cors_is_closed_unless_origins_are_configured(client, shipped_bundle_dir):
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    closed = client.options("/predict", headers=preflight)
    assert "access-control-allow-origin" not in closed.headers
    with make_client(model_dir=shipped_bundle_dir, cors_origins=["https://pacs.example"]) as open_:
        allowed = open_.options(
            "/predict",
            headers={**preflight, "Origin": "https://pacs.example"},
        )
        assert allowed.headers["access-control-allow-origin"] == "https://pacs.example"
        other = open_.options("/predict", headers=preflight)
        assert other.headers.get("access-control-allow-origin") != "https://evil.example"


def test_pictures_and_the_record_are_made_off_the_event_loop(client, synthetic_xray, monkeypatch):
    """The pictures' encoding and the record's row (the upload's hash) are made in the
    prediction's worker thread, not on the event loop's."""
    import threading

    from app.routes import predict as route

    threads: dict[str, list] = {"encode": [], "row": []}
    encode, row = route.encode_picture, route.answer_row

    def encoding(image, picture_format):
        threads["encode"].append(threading.current_thread())
        return encode(image, picture_format)

    def recording(*args, **kwargs):
        threads["row"].append(threading.current_thread())
        return row(*args, **kwargs)

    monkeypatch.setattr(route, "encode_picture", encoding)
    monkeypatch.setattr(route, "answer_row", recording)
    response = client.post("/predict", files={"file": ("x.png", synthetic_xray)})
    assert response.status_code == 200 and response.json()["heatmap"]
    # anyio's worker threads; the event loop runs in the test client's portal thread
    for kind in ("encode", "row"):
        assert threads[kind], kind
        assert all(t.name.startswith("AnyIO worker") for t in threads[kind]), kind


@pytest.mark.parametrize(
    ("picture_format", "magic"),
    [("png", b"\x89PNG\r\n\x1a\n"), ("jpeg", b"\xff\xd8\xff"), ("webp", b"RIFF")],
)
def test_heatmap_format_chooses_the_overlays_encoding(
    client, synthetic_xray, picture_format, magic
):
    """heatmap_format=png (the default), jpeg or webp: the overlay comes in that format at the
    same size, and the answer is the same."""
    default = client.post("/predict", files={"file": ("x.png", synthetic_xray)}).json()
    response = client.post(
        "/predict",
        params={"heatmap_format": picture_format},
        files={"file": ("x.png", synthetic_xray)},
    )
    assert response.status_code == 200
    body = response.json()
    picture = base64.b64decode(body["heatmap"])
    assert picture.startswith(magic)
    decoded = cv2.imdecode(np.frombuffer(picture, np.uint8), cv2.IMREAD_COLOR)
    reference = cv2.imdecode(
        np.frombuffer(base64.b64decode(default["heatmap"]), np.uint8), cv2.IMREAD_COLOR
    )
    assert decoded.shape == reference.shape
    # lossy formats stay close to the lossless overlay (mean absolute error in gray levels)
    assert np.abs(decoded.astype(int) - reference.astype(int)).mean() < 4
    assert body["probability"] == default["probability"]
    assert body["heatmap_grid"] == default["heatmap_grid"]


def test_an_unknown_heatmap_format_is_refused(client, synthetic_xray):
    response = client.post(
        "/predict", params={"heatmap_format": "gif"}, files={"file": ("x.png", synthetic_xray)}
    )
    assert response.status_code == 422


def test_an_upload_over_a_megabyte_is_not_spooled_to_disk(client, monkeypatch):
    """Starlette spools a form's file over 1 MB to a temporary file; up to the upload limit the
    service keeps it in memory (it reads it whole anyway)."""
    import tempfile

    from starlette import formparsers

    rolled = []

    class Recording(tempfile.SpooledTemporaryFile):
        def rollover(self):
            rolled.append(self)
            super().rollover()

    monkeypatch.setattr(formparsers, "SpooledTemporaryFile", Recording)
    noise = np.random.default_rng(0).integers(0, 256, (1100, 1100), dtype=np.uint8)
    upload = png_bytes(noise)
    assert len(upload) > 1024 * 1024
    response = client.post("/predict", files={"file": ("noise.png", upload)})
    assert response.status_code in (200, 422)  # answered or refused by the guard: parsed either way
    assert rolled == []


@pytest.mark.parametrize("beside", [False, True])
def test_the_records_hash_is_the_uploads_whether_in_line_or_beside(
    client, synthetic_xray, monkeypatch, beside
):
    """Small uploads are hashed in line, large ones beside the prediction: the row holds the
    upload's SHA-256 and size either way."""
    import hashlib

    from app.routes import predict as route

    monkeypatch.setattr(route, "HASH_BESIDE_BYTES", 0 if beside else 1 << 40)
    submitted = []
    monkeypatch.setattr(route._HASHER, "submit", lambda *a: submitted.append(a) or _done(*a))
    predictor = client.app.state.service.predictor
    asked = route.Asked(heatmap=False, request_id="abc", recorded=True)
    _, fields, row = route.answer(predictor, synthetic_xray, asked)
    assert row["upload_sha256"] == hashlib.sha256(synthetic_xray).hexdigest()
    assert row["size_bytes"] == len(synthetic_xray) and row["request_id"] == "abc"
    assert bool(submitted) == beside
    not_recorded = route.answer(predictor, synthetic_xray, route.Asked(heatmap=False))
    assert not_recorded[2] is None and not_recorded[1]["probability"] == fields["probability"]


def _done(fn, *args):
    from concurrent.futures import Future

    future: Future = Future()
    future.set_result(fn(*args))
    return future
