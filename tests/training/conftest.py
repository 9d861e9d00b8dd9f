"""A small Kaggle-layout folder made from real images, with the awkward cases a download has."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest


def _take(src: Path, n: int) -> list[Path]:
    return sorted(p for p in src.iterdir() if p.is_file())[:n]


@pytest.fixture(scope="session")
def small_kaggle(tmp_path_factory, kaggle_dir: Path) -> Path:
    """train/ (lower-case class folders, 16-bit PNG, RGB JPEG, a broken file), test/, no val/."""
    root = tmp_path_factory.mktemp("kaggle") / "chest_xray"
    for split, n in (("train", 24), ("test", 10)):
        for cls in ("NORMAL", "PNEUMONIA"):
            folder_name = cls.lower() if split == "train" else cls
            dest = root / split / folder_name
            dest.mkdir(parents=True)
            for path in _take(kaggle_dir / split / cls, n):
                shutil.copy(path, dest / path.name)
    normal = root / "train" / "normal"
    first = sorted(normal.iterdir())[0]
    gray = cv2.imread(str(first), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(normal / "sixteen_bit.png"), gray.astype(np.uint16) * 257)
    cv2.imwrite(str(normal / "colour.jpg"), cv2.applyColorMap(gray, cv2.COLORMAP_BONE))
    (normal / "broken.jpeg").write_bytes(first.read_bytes()[:200])
    (normal / "notes.txt").write_text("not an image, and not named like one")
    return root
