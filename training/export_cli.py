"""`python -m training export`: rebuild a bundle from a .keras file and an existing card.

For when a checkpoint (e.g. runs/<time>/best.keras) should be served, or a bundle re-exported after
a tf2onnx upgrade: it keeps the card's threshold and preprocessing, and re-checks parity on real
images from the data folder.
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np

from engine import ModelCard
from training.data import enhance_files, list_split
from training.export import MIN_PARITY_IMAGES, export_bundle
from training.train import to_unit_float

log = logging.getLogger(__name__)

CARRIED_FIELDS = ("metrics", "data", "training")


def export_from_keras(keras_path: Path, out_dir: Path, data_dir: Path, card_path: Path) -> Path:
    card = ModelCard.read_file(card_path)
    params = card.preprocessing
    model = keras.saving.load_model(keras_path, compile=False)
    files = list_split(Path(data_dir), "val")
    if len(files) < MIN_PARITY_IMAGES:
        files = list_split(Path(data_dir), "train")
    rng = np.random.default_rng(0)
    pick = np.sort(rng.choice(len(files), size=min(len(files), 128), replace=False))
    enhanced = enhance_files(files.subset(pick), params, workers=1, desc="parity images")
    images = to_unit_float(enhanced.images[:, 0], params).numpy()
    extra = {key: getattr(card, key) for key in CARRIED_FIELDS}
    export_bundle(model, out_dir, params, images, card.threshold.model_dump(), extra)
    log.info("re-exported %s to %s", keras_path, out_dir)
    return Path(out_dir)
