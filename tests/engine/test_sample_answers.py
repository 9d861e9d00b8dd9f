"""The shipped bundle gives the recorded answers for the 16 sample uploads, bit for bit.

The record (tests/data/sample_answers.json) is written when a new model is shipped:
    python -m tests.engine.test_sample_answers --record
A refactoring of the engine must leave every probability and heatmap exactly as recorded.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from benchmarks.devdata import dev_data_root
from engine import Predictor
from tests.conftest import SHIPPED_BUNDLE

RECORD = Path(__file__).resolve().parent.parent / "data" / "sample_answers.json"


def answers(predictor: Predictor, files: list[Path]) -> dict[str, dict]:
    out = {}
    for path in files:
        result = predictor.predict(path.read_bytes(), heatmap=True)
        out[path.name] = {
            "probability": result.probability,
            "label": result.label,
            "heatmap_grid_sha256": hashlib.sha256(result.heatmap.grid.tobytes()).hexdigest(),
            "overlay_sha256": hashlib.sha256(result.heatmap.overlay.tobytes()).hexdigest(),
        }
    return out


@pytest.mark.devdata
def test_sample_answers_are_unchanged(shipped_bundle_dir, sample_files):
    record = json.loads(RECORD.read_text())
    predictor = Predictor.from_directory(shipped_bundle_dir)
    assert predictor.bundle.version == record["model_version"], (
        "the shipped model changed: record its answers with "
        "python -m tests.engine.test_sample_answers --record"
    )
    assert answers(predictor, sample_files) == record["answers"]


if __name__ == "__main__" and "--record" in sys.argv:
    predictor = Predictor.from_directory(SHIPPED_BUNDLE)
    files = sorted(p for p in (dev_data_root() / "samples").iterdir() if p.is_file())
    record = {"model_version": predictor.bundle.version, "answers": answers(predictor, files)}
    RECORD.write_text(json.dumps(record, indent=1) + "\n")
    print(f"recorded {len(files)} answers of {record['model_version']} in {RECORD}")
