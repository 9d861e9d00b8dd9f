"""End to end on a few dozen synthetic films: train two members, assemble (calibration, threshold,
guard), export with parity, evaluate, reload. The training a fresh clone runs: no data needed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine import ModelBundle, ModelCard, Predictor
from imaging import preprocess_bytes
from tests.images import png_bytes, synthetic_film
from training.evaluate import evaluate
from training.gradcam_graph import GRADCAM_MIN_CORRELATION


@pytest.mark.slow
def test_trained_bundle_has_everything_the_engine_needs(synthetic_bundle):
    card = ModelCard.read(synthetic_bundle)
    assert json.loads((synthetic_bundle / "model_card.json").read_text())["schema_version"] == 2
    assert card.onnx.parity.images >= 32 and card.onnx.parity.max_abs_diff <= 1e-5
    assert card.onnx.parity.features_max_rel_diff <= 1e-4
    assert 0.0 <= card.threshold.value <= 1.0 and "calibrated" in card.threshold.method
    assert card.calibration is not None and card.calibration.slope != 0
    assert card.ood is not None and card.ood.threshold > 0 and len(card.ood.blocks) == 14
    assert set(card.sha256) == {
        "model.onnx",
        "model.keras",
        "ood_stats.npz",
        "gradcam.onnx",
        "monitoring_reference.npz",
    }
    assert card.monitoring.films >= 20 and card.monitoring.components == 8
    assert card.gradcam.graph == "gradcam.onnx" and card.gradcam.method == "hirescam"
    assert card.gradcam.parity.min_correlation >= GRADCAM_MIN_CORRELATION
    assert [o.name for o in card.outputs] == ["probability", "ood_features"]
    assert len(card.gradcam.members) == 2 and card.gradcam.grid == (19, 19)
    assert card.gradcam.members[0].feature_layers == ("m0_block4_relu", "m0_block5_relu")
    assert card.data["splits"]["val_carved_from_train"] is True
    assert any("broken.jpeg" in s for s in card.data["skipped_files"])
    runs = card.training["member_runs"]
    assert [run["seed"] for run in runs] == [42, 43] and all(r["epochs_run"] >= 1 for r in runs)
    log = (synthetic_bundle / "training_log.csv").read_text().splitlines()
    assert log[0].startswith("member,") and len(log) == 1 + sum(r["epochs_run"] for r in runs)


@pytest.mark.slow
def test_evaluate_writes_the_report_and_updates_the_card(synthetic_bundle, small_kaggle, tmp_path):
    results = evaluate(synthetic_bundle, small_kaggle, tmp_path / "eval", update_card=False)
    assert results["at_bundle_threshold"]["n"] == 20
    assert 0 <= results["calibration"]["ece_10_bins"] <= 1
    assert results["out_of_distribution"]["films"] == 20
    assert set(results["invisible_changes"]) == {
        "gray_level_plus_1",
        "jpeg_quality_90",
        "full_vs_reduced_jpeg_decode",
    }
    assert results["heatmaps_pneumonia_films"]["maps"] == 10
    for name in (
        "predictions.csv",
        "metrics.json",
        "report.md",
        "roc_curve.png",
        "confusion_matrix.png",
        "probability_histogram.png",
        "reliability_diagram.png",
        "training_curves.png",
    ):
        assert (tmp_path / "eval" / name).stat().st_size > 0, name
    rows = (tmp_path / "eval" / "predictions.csv").read_text().splitlines()
    assert rows[0] == "file,true_label,probability,predicted_label,in_distribution,ood_score"
    assert len(rows) == 21


@pytest.mark.slow
def test_calibration_is_applied_once(synthetic_bundle):
    """The engine's probability is sigmoid(slope * mean member logit + bias), not twice that."""
    from engine.runtime import import_keras

    keras = import_keras()
    bundle = ModelBundle.load(synthetic_bundle)
    model, card = bundle.keras_model(), bundle.card
    logits = [model.get_layer(m.dense_layer).output for m in card.gradcam.members]
    raw = keras.Model(model.inputs, logits)
    films = [png_bytes(synthetic_film(i, pneumonia=i % 2 == 1)) for i in range(24)]
    x = np.stack([preprocess_bytes(f, bundle.preprocessing) for f in films])
    mean_logit = np.mean([np.asarray(z) for z in raw([x], training=False)], axis=0).reshape(-1)
    slope, bias = card.calibration.slope, card.calibration.bias
    once = 1 / (1 + np.exp(-(slope * mean_logit + bias)))
    twice = 1 / (1 + np.exp(-(slope * (slope * mean_logit + bias) + bias)))
    served = bundle.predict(x)
    assert np.allclose(served, once, atol=1e-5)
    assert ((once > 0.02) & (once < 0.98)).any(), "all saturated: once and twice would agree"
    assert np.abs(served - twice).max() > 0.05
    predictor = Predictor(bundle, load_gradcam=False, refuse_out_of_distribution=False)
    assert predictor.threshold == card.threshold.value


@pytest.mark.slow
def test_export_command_assembles_member_checkpoints(synthetic_bundle, small_kaggle, tmp_path):
    from training.__main__ import main

    run = synthetic_bundle.parent / "run"
    main(
        [
            "export",
            "--members",
            str(run / "member0" / "best.keras"),
            "--out",
            str(tmp_path / "again"),
            "--data-dir",
            str(small_kaggle),
            "--val-fraction",
            "0.35",
            "--consistency",
            "0.1",
            "--cache-dir",
            str(synthetic_bundle.parent / "cache"),
        ]
    )
    again = ModelBundle.load(tmp_path / "again")
    assert len(again.card.gradcam.members) == 1
    assert again.card.onnx.parity.max_abs_diff <= 1e-5
