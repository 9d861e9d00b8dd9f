"""python -m app predict: files and folders to a CSV, with heatmaps, bad files reported."""

from __future__ import annotations

import csv
import shutil

from app.__main__ import main


def test_batch_predict_writes_one_row_per_file(tmp_path, sample_files, shipped_bundle_dir):
    folder = tmp_path / "archive"
    folder.mkdir()
    for path in sample_files[:3]:
        shutil.copy(path, folder / path.name)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    out = tmp_path / "results.csv"
    heatmaps = tmp_path / "heatmaps"
    code = main(
        [
            "predict",
            str(folder),
            str(sample_files[-1]),
            "--out",
            str(out),
            "--heatmaps",
            str(heatmaps),
            "--model",
            str(shipped_bundle_dir),
        ]
    )
    assert code == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 5
    errors = [r for r in rows if r["error"]]
    assert [r["file"].rsplit("/", 1)[-1] for r in errors] == ["broken.png"]
    for row in rows:
        if not row["error"]:
            assert 0.0 <= float(row["probability"]) <= 1.0
            assert row["label"] in ("NORMAL", "PNEUMONIA")
    assert len(list(heatmaps.glob("*.png"))) == 4
