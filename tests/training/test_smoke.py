"""End to end on a few dozen synthetic films: train 2 epochs, export with parity, evaluate, reload.

This is the training a fresh clone runs: no development data needed.
"""

from __future__ import annotations

import json

import pytest

from engine import ModelBundle, ModelCard
from training.evaluate import evaluate
from training.settings import TrainSettings
from training.train import train


@pytest.mark.slow
def test_train_export_evaluate_and_reload(small_kaggle, tmp_path):
    bundle_dir = tmp_path / "bundle"
    settings = TrainSettings(epochs=2, batch_size=10, upload_variants=1, val_fraction=0.35)
    train(small_kaggle, bundle_dir, settings, run_dir=tmp_path / "run", cache_dir=tmp_path / "c")

    card = ModelCard.read(bundle_dir)
    assert card.onnx.parity.images >= 32
    assert card.onnx.parity.max_abs_diff <= 1e-5
    assert 0.0 <= card.threshold.value <= 1.0
    assert card.data["splits"]["val_carved_from_train"] is True
    assert any("broken.jpeg" in s for s in card.data["skipped_files"])
    assert card.training["epochs_run"] == 2
    assert json.loads((bundle_dir / "model_card.json").read_text())["schema_version"] == 2
    assert (tmp_path / "run" / "training_log.csv").is_file()

    results = evaluate(bundle_dir, small_kaggle, tmp_path / "eval", update_card=True)
    assert results["at_bundle_threshold"]["n"] == 20
    for name in (
        "predictions.csv",
        "metrics.json",
        "report.md",
        "roc_curve.png",
        "confusion_matrix.png",
        "probability_histogram.png",
        "training_curves.png",
    ):
        assert (tmp_path / "eval" / name).stat().st_size > 0, name
    rows = (tmp_path / "eval" / "predictions.csv").read_text().splitlines()
    assert rows[0] == "file,true_label,probability,predicted_label" and len(rows) == 21

    bundle = ModelBundle.load(bundle_dir)  # the card update kept the hashes valid
    assert "dev_test" in bundle.card.metrics
    assert bundle.keras_model().count_params() > 500_000


@pytest.mark.slow
def test_export_command_rebuilds_a_bundle_from_a_checkpoint(small_kaggle, tmp_path):
    from training.__main__ import main

    first = tmp_path / "first"
    settings = TrainSettings(epochs=1, batch_size=10, upload_variants=1, val_fraction=0.35)
    train(small_kaggle, first, settings, run_dir=tmp_path / "run", cache_dir=tmp_path / "c")
    main(
        [
            "export",
            "--keras",
            str(first / "model.keras"),
            "--out",
            str(tmp_path / "again"),
            "--card",
            str(first / "model_card.json"),
            "--data-dir",
            str(small_kaggle),
        ]
    )
    again = ModelBundle.load(tmp_path / "again")
    assert again.threshold == ModelBundle.load(first).threshold
    assert again.card.onnx.parity.max_abs_diff <= 1e-5
