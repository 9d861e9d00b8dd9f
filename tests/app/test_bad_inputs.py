"""Every kind of bad or odd upload: its documented status, a JSON error, a healthy service after.

Statuses: 400 undecodable or too small, 413 too large, 415 not JPEG/PNG, 422 malformed request;
odd but valid X-rays (16-bit, RGBA, palette, CMYK, EXIF-rotated, non-ASCII names) get 200.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.app.conftest import make_client
from tests.images import encode, exif_rotated_jpeg, png_bomb, synthetic_film

FILM = synthetic_film(0, 320, 256)
GRAY = Image.fromarray(FILM)
JPEG = encode(GRAY, "JPEG", quality=90)
PNG = encode(GRAY, "PNG")


BAD_UPLOADS = {
    "zero bytes": (b"", "x.jpg", 400),
    "random bytes": (np.random.default_rng(0).bytes(4096), "x.jpg", 415),
    "truncated JPEG": (JPEG[: len(JPEG) // 2], "x.jpg", 400),
    "truncated PNG": (PNG[: len(PNG) // 2], "x.png", 400),
    "JPEG header only": (JPEG[:200], "x.jpg", 400),
    "text named .jpg": (b"patient notes: nothing to see\n" * 20, "notes.jpg", 415),
    "HTML named .jpg": (b"<!doctype html><html><body><img src=x></body></html>", "p.jpg", 415),
    "PDF named .jpg": (b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF", "r.jpg", 415),
    "SVG named .jpg": (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>',
        "s.jpg",
        415,
    ),
    "GIF": (encode(GRAY, "GIF"), "x.gif", 415),
    "TIFF": (encode(GRAY, "TIFF"), "x.tif", 415),
    "BMP": (encode(GRAY, "BMP"), "x.bmp", 415),
    "decompression bomb PNG": (png_bomb(), "bomb.png", 413),
    "1x1 pixel": (encode(Image.new("L", (1, 1), 128), "PNG"), "dot.png", 400),
    "very thin image": (encode(Image.new("L", (4000, 3), 128), "PNG"), "strip.png", 400),
}

ODD_BUT_VALID = {
    "16-bit PNG": (encode(FILM.astype(np.uint16) * 257, "PNG"), "x16.png"),
    "RGBA PNG": (encode(GRAY.convert("RGBA"), "PNG"), "rgba.png"),
    "palette PNG": (encode(GRAY.convert("P"), "PNG"), "pal.png"),
    "CMYK JPEG": (encode(GRAY.convert("RGB").convert("CMYK"), "JPEG", quality=90), "cmyk.jpg"),
    "EXIF-rotated JPEG": (exif_rotated_jpeg(FILM), "rotated.jpg"),
    "non-ASCII file name": (JPEG, "Röntgen_胸部_ß.jpg"),
    "no file name extension": (PNG, "upload"),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_bad_upload_gets_its_status(client, case):
    data, name, status = BAD_UPLOADS[case]
    response = client.post("/predict", files={"file": (name, data)})
    assert response.status_code == status, response.text
    assert isinstance(response.json()["detail"], str) and response.json()["detail"]
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize("case", list(ODD_BUT_VALID))
def test_odd_but_valid_upload_is_scored(client, case):
    data, name = ODD_BUT_VALID[case]
    response = client.post("/predict", files={"file": (name, data)}, params={"heatmap": "false"})
    assert response.status_code == 200, response.text
    assert 0.0 <= response.json()["probability"] <= 1.0


def test_exif_rotation_is_reported_as_displayed(client):
    plain = client.post("/predict", files={"file": ("a.jpg", JPEG)}, params={"heatmap": "false"})
    rotated = client.post(
        "/predict", files={"file": ("b.jpg", exif_rotated_jpeg(FILM))}, params={"heatmap": "false"}
    )
    assert rotated.json()["image"] == plain.json()["image"]


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {},  # no body at all
        {"data": {"image": "x"}},  # a form without the file field
        {"content": b"raw bytes, not a form", "headers": {"content-type": "image/jpeg"}},
        {"files": {"upload": ("x.jpg", JPEG)}},  # the file under another field name
        {"files": [("file", ("a.jpg", JPEG)), ("file", ("b.jpg", JPEG))]},  # several files
    ],
)
def test_malformed_requests_get_422(client, request_kwargs):
    response = client.post("/predict", **request_kwargs)
    assert response.status_code == 422, response.text
    assert "detail" in response.json()
    assert client.get("/health").status_code == 200


def test_upload_over_the_byte_limit_is_refused(shipped_bundle_dir):
    with make_client(model_dir=shipped_bundle_dir, max_upload_bytes=50_000) as small:
        big = JPEG + b"\x00" * 200_000
        response = small.post("/predict", files={"file": ("big.jpg", big)})
        assert response.status_code == 413

        sent = 0

        def chunks():  # a valid multipart body, streamed without a Content-Length
            nonlocal sent
            yield (
                b'--xb\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
                b"Content-Type: image/jpeg\r\n\r\n" + JPEG
            )
            for _ in range(1000):
                sent += 1
                yield b"\x00" * 10_000
            yield b"\r\n--xb--\r\n"

        streamed = small.post(
            "/predict",
            content=chunks(),
            headers={"content-type": "multipart/form-data; boundary=xb"},
        )
        assert streamed.status_code == 413
        assert small.get("/health").status_code == 200


def test_declared_oversize_body_is_refused_before_reading(shipped_bundle_dir):
    with make_client(model_dir=shipped_bundle_dir, max_upload_bytes=1000) as small:
        response = small.post(
            "/predict",
            content=b"tiny",
            headers={"content-type": "multipart/form-data; boundary=x", "content-length": "999999"},
        )
        assert response.status_code == 413
