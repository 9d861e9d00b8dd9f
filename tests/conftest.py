"""Shared fixtures: the shipped bundle, synthetic films, and (for `devdata` checks) the data set.

`make test` runs everything that needs no development data (`-m "not devdata"` in pyproject);
`make test-data` runs the `devdata` checks, which read ../shared/data or $CXR_DATA_DIR and fail,
not skip, when it is missing.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks.devdata import DATA_DIR_ENV, dev_data_root, has_dev_data
from tests.dicom_files import grayscale_dicom
from tests.images import png_bytes, synthetic_film, write_kaggle_layout

# The record store fixtures (SQLite, and a throw-away PostgreSQL where it is installed).
pytest_plugins = ["tests.records_stores"]

REPO = Path(__file__).resolve().parent.parent
SHIPPED_BUNDLE = REPO / "models" / "default"

# The services the tests start record their answers in a throw-away SQLite file, not in the
# working tree's records/ (tests of the record itself pass their own DATABASE_URL).
_RECORDS = Path(tempfile.mkdtemp(prefix="cxr-test-records-"))
os.environ.setdefault("DATABASE_URL", f"sqlite:///{_RECORDS / 'answers.sqlite3'}")
os.environ.setdefault("RECORDS_SPOOL_DIR", str(_RECORDS / "spool"))


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


@pytest.fixture(scope="session")
def small_kaggle(tmp_path_factory) -> Path:
    """train/ (lower-case class folders, 16-bit PNG, RGB JPEG, DICOM, a broken file), test/, no
    val/."""
    root = write_kaggle_layout(tmp_path_factory.mktemp("kaggle"), {"train": 40, "test": 10})
    for cls in ("NORMAL", "PNEUMONIA"):
        (root / "train" / cls).rename(root / "train" / cls.lower())
    normal = root / "train" / "normal"
    first = sorted(normal.iterdir())[0]
    gray = cv2.imread(str(first), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(normal / "sixteen_bit.png"), gray.astype(np.uint16) * 257)
    cv2.imwrite(str(normal / "colour.jpg"), cv2.applyColorMap(gray, cv2.COLORMAP_BONE))
    (normal / "broken.jpeg").write_bytes(first.read_bytes()[:200])
    (normal / "notes.txt").write_text("not an image, and not named like one")
    sick = cv2.imread(str(sorted((root / "train" / "pneumonia").iterdir())[0]), 0)
    (root / "train" / "pneumonia" / "film.dcm").write_bytes(grayscale_dicom(sick, bits_stored=12))
    return root


@pytest.fixture(scope="session")
def synthetic_bundle(small_kaggle, tmp_path_factory) -> Path:
    """A two-member bundle trained for six epochs on the synthetic films, every option on: the
    training a fresh clone runs, and a bundle whose guard knows synthetic films."""
    from training.settings import TrainSettings
    from training.train import train

    work = tmp_path_factory.mktemp("synthetic-bundle")
    settings = TrainSettings(
        epochs=6,
        batch_size=10,
        upload_variants=2,
        val_fraction=0.35,
        members=2,
        seed=42,  # pinned: these seeds leave the synthetic films' probabilities unsaturated
        consistency=0.1,
        noise_std=0.01,
        border_erase_rate=0.3,
        marker_rate=0.3,
    )
    train(small_kaggle, work / "bundle", settings, run_dir=work / "run", cache_dir=work / "cache")
    return work / "bundle"
