"""From trained member networks to a bundle: calibrate, choose the threshold, fit the guard, export.

Everything here is fitted on the validation split seen as simulated full-resolution uploads (the
way the service sees films), or on the training split (the guard's statistics); the test split is
never read.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import keras
import numpy as np

from engine import ModelBundle
from engine.card import Calibration
from imaging import PreprocessingParams
from training.calibration import brier_score, expected_calibration_error, fit_platt, sigmoid
from training.data import EnhancedImages
from training.export import export_bundle
from training.metrics import classification_metrics
from training.ood import fit_guard
from training.operating_point import expected_cost_threshold
from training.population import TRAINING_POPULATION
from training.serving import ServingGraph, build_serving_graph, mean_logit_model
from training.settings import TrainSettings

log = logging.getLogger(__name__)


def run_batches(model: keras.Model, images: np.ndarray, batch_size: int = 64) -> list[np.ndarray]:
    """Every output of `model` in inference mode (Keras's compiled predict: fast for many)."""
    out = model.predict(images.astype(np.float32), batch_size=batch_size, verbose=0)
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


def unit(images: np.ndarray, params: PreprocessingParams) -> np.ndarray:
    return (images.astype(np.float32) * np.float32(params.scale))[..., np.newaxis]


def uploads(data: EnhancedImages) -> tuple[np.ndarray, np.ndarray]:
    """Every simulated-upload variant (1..V-1) as its own example; variant 0 if there are none."""
    images = data.images[:, 1:] if data.images.shape[1] > 1 else data.images
    n, v = images.shape[:2]
    return images.reshape(n * v, *images.shape[2:]), np.repeat(data.labels, v)


def calibrate(
    graph: ServingGraph, val_x: np.ndarray, val_y: np.ndarray, described: str
) -> tuple[Calibration, np.ndarray]:
    """Platt scaling of the members' mean logit on validation uploads; calibrated probabilities."""
    logits = run_batches(mean_logit_model(graph), val_x)[0].reshape(-1)
    slope, bias = fit_platt(logits, val_y)
    raw, calibrated = sigmoid(logits), sigmoid(slope * logits + bias)
    metrics = {
        "ece_10_bins_before": expected_calibration_error(raw, val_y),
        "ece_10_bins_after": expected_calibration_error(calibrated, val_y),
        "brier_before": brier_score(raw, val_y),
        "brier_after": brier_score(calibrated, val_y),
    }
    log.info("Platt scaling: slope %.3f, bias %.3f; validation %s", slope, bias, metrics)
    return Calibration(slope=slope, bias=bias, fitted_on=described, metrics=metrics), calibrated


def assemble_bundle(
    members: list[keras.Model],
    out_dir: Path,
    params: PreprocessingParams,
    settings: TrainSettings,
    train_data: EnhancedImages,
    val_data: EnhancedImages,
    extra_card: dict[str, Any],
) -> ModelBundle:
    val_up_x, val_up_y = uploads(val_data)
    val_up_x = unit(val_up_x, params)
    variants = max(1, val_data.images.shape[1] - 1)
    described = (
        f"validation split ({len(val_data.labels)} images) as {variants} simulated uploads each"
    )

    blocks = settings.gradcam_block_numbers
    uncalibrated = build_serving_graph(members, 1.0, 0.0, blocks)
    calibration, val_prob = calibrate(uncalibrated, val_up_x, val_up_y, described)
    graph = build_serving_graph(members, calibration.slope, calibration.bias, blocks)
    threshold = expected_cost_threshold(
        calibration, val_up_y, described, settings.false_negative_cost
    )
    threshold_value = threshold.value

    train_views = train_data.images[:, : min(2, train_data.images.shape[1])]
    train_x = unit(train_views.reshape(-1, *train_views.shape[2:]), params)
    train_y = np.repeat(train_data.labels, train_views.shape[1])
    val_clean_x = unit(val_data.images[:, 0], params)
    train_features = run_batches(graph.model, train_x)[1]
    val_clean_prob, val_clean_features = run_batches(graph.model, val_clean_x)
    val_up_features = run_batches(graph.model, val_up_x)[1]
    guard = fit_guard(
        train_features,
        train_y,
        np.concatenate([val_clean_features, val_up_features]),
        graph.feature_slices,
        fitted_on=f"training split ({len(train_data.labels)} images, as files and one upload each)",
        chosen_on=(
            f"validation split ({len(val_data.labels)} images, as files and as {variants} "
            "simulated uploads each)"
        ),
    )
    log.info("out-of-distribution threshold %.3f", guard.spec.threshold)

    metrics = {
        "validation_uploads": classification_metrics(val_up_y, val_prob, threshold_value),
        "validation_as_files": classification_metrics(
            val_data.labels, val_clean_prob.reshape(-1), threshold_value
        ),
    }
    parity_images = np.concatenate([val_clean_x, val_up_x])[:256]
    card_extra = {"population": TRAINING_POPULATION, **extra_card, "metrics": metrics}
    return export_bundle(
        graph, out_dir, params, parity_images, threshold, calibration, guard, card_extra
    )
