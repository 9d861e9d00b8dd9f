"""The Ray backend of the batch job: the same engine, the same rows as the local backend."""

from __future__ import annotations

import csv

import pytest

from app.__main__ import main
from tests.dicom_files import grayscale_dicom
from tests.images import jpeg_bytes, png_bytes, synthetic_film


def _rows(path) -> list[dict]:
    return list(csv.DictReader(path.open()))


def _same_rows(local: list[dict], ray: list[dict]) -> None:
    assert [r["file"] for r in ray] == [r["file"] for r in local]
    for a, b in zip(local, ray, strict=True):
        assert a["label"] == b["label"] and a["error"] == b["error"], (a, b)
        if a["probability"]:
            assert abs(float(a["probability"]) - float(b["probability"])) <= 1e-6
            assert abs(float(a["ood_score"] or 0) - float(b["ood_score"] or 0)) <= 1e-4


def _score(paths, out, model, backend, heatmaps=None) -> list[dict]:
    args = ["predict", *map(str, paths), "--out", str(out), "--model", str(model)]
    args += ["--backend", backend, "--workers", "2"]
    if heatmaps:
        args += ["--heatmaps", str(heatmaps)]
    assert main(args) == 0
    return _rows(out)


@pytest.mark.slow
def test_ray_and_local_backends_write_the_same_rows(tmp_path, synthetic_bundle):
    folder = tmp_path / "archive"
    folder.mkdir()
    for i in range(6):
        (folder / f"film{i}.jpg").write_bytes(jpeg_bytes(synthetic_film(100 + i, 700, 600)))
    (folder / "film6.png").write_bytes(png_bytes(synthetic_film(106)))
    (folder / "film7.dcm").write_bytes(grayscale_dicom(synthetic_film(107), bits_stored=12))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    local = _score([folder], tmp_path / "local.csv", synthetic_bundle, "local", tmp_path / "hl")
    ray = _score([folder], tmp_path / "ray.csv", synthetic_bundle, "ray", tmp_path / "hr")
    assert len(local) == 9 and sum(1 for r in ray if r["error"]) == 1  # one bad file, one row
    _same_rows(local, ray)
    assert sorted(p.name for p in (tmp_path / "hr").iterdir()) == sorted(
        p.name for p in (tmp_path / "hl").iterdir()
    )


@pytest.mark.slow
@pytest.mark.devdata
def test_the_sixteen_samples_score_the_same_on_both_backends(
    tmp_path, shipped_bundle_dir, sample_files
):
    local = _score(sample_files, tmp_path / "local.csv", shipped_bundle_dir, "local")
    ray = _score(sample_files, tmp_path / "ray.csv", shipped_bundle_dir, "ray")
    assert len(local) == 16 and not any(r["error"] for r in local)
    _same_rows(local, ray)
