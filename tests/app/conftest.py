"""An in-process client on the shipped bundle, and helpers to make uploads."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from app.settings import Settings


def make_client(**overrides) -> TestClient:
    return TestClient(create_app(Settings(**overrides), load_in_background=False))


@pytest.fixture(scope="module")
def client(shipped_bundle_dir: Path):
    with make_client(model_dir=shipped_bundle_dir) as test_client:
        yield test_client


def png_bytes(array: np.ndarray, **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", **kwargs)
    return buf.getvalue()


@pytest.fixture(scope="session")
def synthetic_xray() -> bytes:
    """A chest-like gray picture that needs no data set: two dark lungs on a bright field."""
    yy, xx = np.mgrid[0:400, 0:300]
    image = np.full((400, 300), 200, np.float32)
    for cx in (95, 205):
        image -= 120 * np.exp(-(((xx - cx) / 45.0) ** 2 + ((yy - 200) / 110.0) ** 2))
    return png_bytes(image.clip(0, 255).astype(np.uint8))
