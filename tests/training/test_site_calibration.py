"""`python -m training calibrate`: a site's films re-fit the calibration and threshold, the
networks stay, the report is cross-validated, and every refusal writes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from engine import ModelBundle, Predictor
from tests.images import write_kaggle_layout
from training.__main__ import main
from training.site_calibration import (
    SiteDataError,
    calibrate_site,
    check_counts,
    mean_logits,
    read_site,
)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A site's films in the plain layout SITE/NORMAL, SITE/PNEUMONIA (12 of each)."""
    root = write_kaggle_layout(tmp_path_factory.mktemp("site"), {"test": 12}, seed=7)
    return root / "test"


def test_layouts_and_csv_are_read_alike(site, tmp_path):
    plain = read_site(site)
    assert plain.counts() == {"NORMAL": 12, "PNEUMONIA": 12}
    kaggle = tmp_path / "kaggle"
    shutil.copytree(site, kaggle / "train")
    assert read_site(kaggle).sha256() == plain.sha256()
    rows = ["file,label"] + [
        f"{p.relative_to(site)},{['NORMAL', '1'][y]}"
        for p, y in zip(plain.paths, plain.labels, strict=True)
    ]
    (site / "labels.csv").write_text("\n".join(rows) + "\n")
    try:
        assert read_site(site / "labels.csv").sha256() == plain.sha256()
    finally:
        (site / "labels.csv").unlink()


def test_too_few_or_one_class_is_refused_in_one_line(site, tmp_path):
    films = read_site(site)
    films.paths, films.labels = films.paths[:15], films.labels[:15]
    with pytest.raises(SiteDataError, match="too few films"):
        check_counts(films)
    only = tmp_path / "only"
    shutil.copytree(site / "NORMAL", only / "NORMAL")
    with pytest.raises(SiteDataError, match="both NORMAL and PNEUMONIA"):
        check_counts(read_site(only))


def test_logits_are_recovered_from_the_served_probability():
    z = np.array([-3.0, -0.2, 0.0, 1.5, 4.0])
    p = 1 / (1 + np.exp(-(0.8 * z + 0.3)))
    assert np.allclose(mean_logits(p, 0.8, 0.3), z, atol=1e-6)


@pytest.mark.slow
def test_calibrate_writes_a_servable_bundle_with_the_site_record(synthetic_bundle, site, tmp_path):
    out = tmp_path / "site-bundle"
    main(
        ["calibrate", "--model", str(synthetic_bundle), "--data-dir", str(site), "--out", str(out)]
    )
    before, after = ModelBundle.load(synthetic_bundle), ModelBundle.load(out)
    assert after.version != before.version
    record = after.card.data["site_calibration"]
    assert record["counts"] == {"NORMAL": 12, "PNEUMONIA": 12}
    assert record["recalibrated_from"] == before.version
    assert after.card.threshold.rule == "expected_cost"
    assert after.card.calibration.fitted_on.startswith("site films")
    report = json.loads((out / "site_calibration" / "report.json").read_text())
    assert report["folds"] >= 2 and {"before", "after"} <= set(report)
    assert (out / "site_calibration" / "reliability.png").stat().st_size > 1000
    # Same networks: on the site's films, the new probability is the re-fitted Platt map of the
    # old logit (the ranking cannot change).
    films = read_site(site)
    old = Predictor(before, load_gradcam=False)
    new = Predictor(after, load_gradcam=False)
    p_old = np.array([old.predict(p.read_bytes(), heatmap=False).probability for p in films.paths])
    p_new = np.array([new.predict(p.read_bytes(), heatmap=False).probability for p in films.paths])
    assert after.card.calibration.slope > 0
    in_old_order = p_new[np.argsort(p_old, kind="stable")]
    assert np.all(np.diff(in_old_order) >= -1e-6)  # sorted by the old answer, the new one too
    z = mean_logits(p_old, before.card.calibration.slope, before.card.calibration.bias)
    cal = after.card.calibration
    assert np.allclose(p_new, 1 / (1 + np.exp(-(cal.slope * z + cal.bias))), atol=2e-3)


@pytest.mark.slow
def test_a_refused_or_unreadable_film_writes_nothing(synthetic_bundle, site, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(site, bad)
    (bad / "NORMAL" / "scan.jpeg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    out = tmp_path / "never"
    with pytest.raises(SiteDataError, match="cannot be read") as caught:
        calibrate_site(synthetic_bundle, bad, out)
    assert "\n" not in str(caught.value)
    assert not out.exists() and not list(tmp_path.glob(".never-*"))
    (bad / "NORMAL" / "scan.jpeg").unlink()
    (bad / "NORMAL" / "noise.png").write_bytes(
        __import__("cv2").imencode(
            ".png", np.random.default_rng(0).integers(0, 256, (300, 300), dtype=np.uint8)
        )[1]
    )
    with pytest.raises(SiteDataError, match="refused by the guard"):
        calibrate_site(synthetic_bundle, bad, out)
    assert not out.exists()
