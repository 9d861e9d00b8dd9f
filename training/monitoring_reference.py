"""Write monitoring's reference into a bundle: the validation films as the service sees them.

Every validation film goes through the engine as simulated full-resolution uploads (what a
deployed service receives), and the signals monitoring watches are kept per upload, with the
principal axes of the pooled features, in `monitoring_reference.npz` (listed in the card).

    python -m training monitoring-reference --model DIR --data-dir KAGGLE
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from engine import ModelBundle, Predictor
from engine.bundle import sha256_file
from engine.card import ModelCard, MonitoringSpec
from engine.records.reference import (
    COMPONENTS,
    REFERENCE_FILE,
    STAT_NAMES,
    MonitoringReference,
    principal_axes,
)
from imaging import ImageError, preprocess_bytes
from training.data import load_splits
from training.population_check import split_settings
from training.upload_simulation import simulate_upload

log = logging.getLogger(__name__)
UPLOADS_PER_FILM = 2


def reference_signals(predictor: Predictor, uploads: list[bytes]) -> dict[str, np.ndarray]:
    """Per answered upload: what monitoring compares a window with, and the pooled features."""
    card = predictor.bundle.card
    feature_name = card.ood.feature_output if card.ood else None
    rows: dict[str, list] = {"features": []}
    for data in tqdm(uploads, desc="reference", unit="upload", leave=False):
        try:
            result = predictor.predict(data, heatmap=False)
        except ImageError:
            continue
        tensor = preprocess_bytes(data, predictor.bundle.preprocessing)
        features = predictor.bundle.run(tensor[np.newaxis])[feature_name][0]
        rows["features"].append(features)
        values = {
            "probability": result.probability,
            "mean_logit": result.mean_logit,
            "positive": float(result.label == card.labels[1]),
            "ood_score": result.ood_score,
            "population_score": result.population_score,
            **{f"stat_{k}": result.image_stats[k] for k in STAT_NAMES},
        }
        for key, value in values.items():
            rows.setdefault(key, []).append(np.nan if value is None else value)
    return {key: np.asarray(value, np.float64) for key, value in rows.items()}


def add_monitoring_reference(bundle_dir: Path, data_dir: Path, seed: int = 7) -> Path:
    """Build the reference from the bundle's own validation split and record it in the card."""
    bundle_dir = Path(bundle_dir)
    bundle = ModelBundle.load(bundle_dir, intra_op_threads=2)
    card = bundle.card
    if card.ood is None:
        raise ValueError("the bundle has no pooled features to summarise (no guard)")
    val_fraction, split_seed = split_settings(card)
    validation = load_splits(Path(data_dir), val_fraction, seed=split_seed).val
    rng = np.random.default_rng(seed)
    uploads = [
        simulate_upload(path.read_bytes(), rng)
        for path in validation.paths
        for _ in range(UPLOADS_PER_FILM)
    ]
    predictor = Predictor(bundle, load_gradcam=False)
    signals = reference_signals(predictor, uploads)
    features = signals.pop("features")
    axes_mean, axes = principal_axes(features, COMPONENTS)
    summary = (features - axes_mean) @ axes.T
    for k in range(axes.shape[0]):
        signals[f"feature_{k}"] = summary[:, k]
    path = MonitoringReference(axes_mean, axes, signals).save(bundle_dir / REFERENCE_FILE)
    spec = MonitoringSpec(
        file=path.name,
        built_from=(
            f"validation split ({len(validation)} films) as {UPLOADS_PER_FILM} simulated uploads "
            "each, through the engine"
        ),
        films=len(features),
        components=int(axes.shape[0]),
    )
    card = ModelCard.read(bundle_dir)
    card.model_copy(
        update={"monitoring": spec, "sha256": {**card.sha256, path.name: sha256_file(path)}}
    ).write(bundle_dir)
    log.info("monitoring reference: %d uploads, %d axes", len(features), axes.shape[0])
    return path
