"""python -m app predict: files and folders to a CSV, with heatmaps, bad files reported."""

from __future__ import annotations

import csv

import cv2

from app.__main__ import main
from tests.dicom_files import grayscale_dicom
from tests.images import jpeg_bytes, png_bytes, synthetic_film


def test_batch_predict_writes_one_row_per_file(tmp_path, shipped_bundle_dir):
    folder = tmp_path / "archive"
    (folder / "nested").mkdir(parents=True)
    (folder / "a.png").write_bytes(png_bytes(synthetic_film(1)))
    (folder / "b.jpg").write_bytes(jpeg_bytes(synthetic_film(2, 1200, 1000)))
    (folder / "nested" / "c.jpeg").write_bytes(jpeg_bytes(synthetic_film(3, pneumonia=True)))
    (folder / "d.dcm").write_bytes(grayscale_dicom(synthetic_film(5), bits_stored=12))
    (folder / "nested" / "IM0001").write_bytes(grayscale_dicom(synthetic_film(6)))  # no suffix
    (folder / "lateral.dcm").write_bytes(grayscale_dicom(synthetic_film(7), ViewPosition="LL"))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (folder / "notes.txt").write_text("not picked up: not named like an image")
    single = tmp_path / "single.png"
    single.write_bytes(png_bytes(synthetic_film(4)))
    out = tmp_path / "results.csv"
    heatmaps = tmp_path / "heatmaps"
    code = main(
        [
            "predict",
            str(folder),
            str(single),
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
    assert len(rows) == 8
    errors = {r["file"].rsplit("/", 1)[-1]: r["error"] for r in rows if r["error"]}
    assert sorted(errors) == ["broken.png", "lateral.dcm"]
    assert "lateral" in errors["lateral.dcm"]
    for row in rows:
        if not row["error"]:
            assert 0.0 <= float(row["probability"]) <= 1.0
            assert 0.0 <= float(row["population_score"]) <= 1.0
            assert row["label"] in ("NORMAL", "PNEUMONIA")
    written = sorted(heatmaps.glob("*.png"))
    assert len(written) == 6
    overlay = cv2.imread(str(written[0]))
    assert overlay is not None and overlay.ndim == 3  # a PNG file, no base64 on the way
