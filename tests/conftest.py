"""Shared fixtures: the shipped bundle, synthetic films, and (for `devdata` checks) the data set.

`make test` runs everything that needs no development data (`-m "not devdata"` in pyproject);
`make test-data` runs the `devdata` checks, which read ../shared/data or $CXR_DATA_DIR and fail,
not skip, when it is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.devdata import DATA_DIR_ENV, dev_data_root, has_dev_data
from tests.images import png_bytes, synthetic_film

REPO = Path(__file__).resolve().parent.parent
SHIPPED_BUNDLE = REPO / "models" / "default"


@pytest.fixture(scope="session")
def data_root() -> Path:
    if not has_dev_data():
        pytest.fail(
            f"devdata checks need the development data at {dev_data_root()} "
            f"(or ${DATA_DIR_ENV}); `make test` runs everything else"
        )
    return dev_data_root()


@pytest.fixture(scope="session")
def kaggle_dir(data_root: Path) -> Path:
    return data_root / "chest_xray"


@pytest.fixture(scope="session")
def sample_files(data_root: Path) -> list[Path]:
    return sorted(p for p in (data_root / "samples").iterdir() if p.is_file())


@pytest.fixture(scope="session")
def shipped_bundle_dir() -> Path:
    if not (SHIPPED_BUNDLE / "model_card.json").is_file():
        pytest.fail(f"the shipped model bundle is missing: {SHIPPED_BUNDLE}")
    return SHIPPED_BUNDLE


@pytest.fixture(scope="session")
def synthetic_xray() -> bytes:
    """A chest-like PNG film that needs no data set."""
    return png_bytes(synthetic_film(0, pneumonia=True))
