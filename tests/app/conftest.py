"""An in-process client on the shipped bundle."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings


def make_client(**overrides) -> TestClient:
    return TestClient(create_app(Settings(**overrides), load_in_background=False))


@pytest.fixture(scope="module")
def client(shipped_bundle_dir: Path):
    with make_client(model_dir=shipped_bundle_dir) as test_client:
        yield test_client
