"""Shared fixtures: where the development data lives, and the shipped model bundle.

Data-dependent tests read ../shared/data (or $CXR_DATA_DIR) and skip with the reason when absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from training.data import shared_data_root

REPO = Path(__file__).resolve().parent.parent
SHIPPED_BUNDLE = REPO / "models" / "default"


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = shared_data_root()
    if not (root / "chest_xray").is_dir():
        pytest.skip(f"development data not found at {root} (set CXR_DATA_DIR to a Kaggle layout)")
    return root


@pytest.fixture(scope="session")
def kaggle_dir(data_root: Path) -> Path:
    return data_root / "chest_xray"


@pytest.fixture(scope="session")
def sample_files(data_root: Path) -> list[Path]:
    samples = sorted((data_root / "samples").glob("*"))
    if not samples:
        pytest.skip(f"no sample uploads under {data_root / 'samples'}")
    return samples


@pytest.fixture(scope="session")
def shipped_bundle_dir() -> Path:
    if not (SHIPPED_BUNDLE / "model_card.json").is_file():
        pytest.fail(f"the shipped model bundle is missing: {SHIPPED_BUNDLE}")
    return SHIPPED_BUNDLE
