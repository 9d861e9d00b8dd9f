"""Where the development data lives on a developer's or CI machine (never product code).

$CXR_DATA_DIR (the folder holding chest_xray/ and samples/, or chest_xray/ itself), else
../shared/data beside the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "CXR_DATA_DIR"
REPO = Path(__file__).resolve().parent.parent


def dev_data_root() -> Path:
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        path = Path(env)
        return path.parent if path.name == "chest_xray" else path
    return REPO.parent / "shared" / "data"


def has_dev_data() -> bool:
    root = dev_data_root()
    return (root / "chest_xray").is_dir() and (root / "samples").is_dir()
