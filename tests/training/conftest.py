"""A small Kaggle-layout folder of synthetic films, with the awkward cases a download has."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.images import write_kaggle_layout


@pytest.fixture(scope="session")
def small_kaggle(tmp_path_factory) -> Path:
    """train/ (lower-case class folders, 16-bit PNG, RGB JPEG, a broken file), test/, no val/."""
    root = write_kaggle_layout(tmp_path_factory.mktemp("kaggle"), {"train": 24, "test": 10})
    for cls in ("NORMAL", "PNEUMONIA"):
        (root / "train" / cls).rename(root / "train" / cls.lower())
    normal = root / "train" / "normal"
    first = sorted(normal.iterdir())[0]
    gray = cv2.imread(str(first), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(normal / "sixteen_bit.png"), gray.astype(np.uint16) * 257)
    cv2.imwrite(str(normal / "colour.jpg"), cv2.applyColorMap(gray, cv2.COLORMAP_BONE))
    (normal / "broken.jpeg").write_bytes(first.read_bytes()[:200])
    (normal / "notes.txt").write_text("not an image, and not named like one")
    return root
