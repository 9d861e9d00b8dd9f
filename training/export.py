"""Write a model bundle: model.keras, model.onnx (tf2onnx, opset 17) and model_card.json.

Export refuses to finish unless ONNX Runtime reproduces Keras on real preprocessed images within
the parity bound; the measured difference goes into the card.
"""

from __future__ import annotations

import datetime as dt
import logging
import platform
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from engine import ModelBundle, ModelCard
from engine.bundle import KERAS_FILE, ONNX_FILE, sha256_file
from engine.card import (
    CARD_FILE,
    GradCamMember,
    GradCamSpec,
    OnnxInfo,
    Parity,
    TensorSpec,
    Threshold,
)
from imaging import PreprocessingParams
from training.data import CLASS_NAMES
from training.model import GRADCAM_LAYER, INPUT_NAME, OUTPUT_NAME

log = logging.getLogger(__name__)

OPSET = 17
PARITY_TOLERANCE = 1e-5
MIN_PARITY_IMAGES = 32


class ExportError(RuntimeError):
    """Export could not produce a bundle that serves what Keras computes."""


def keras_probabilities(model: keras.Model, batch: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Inference-mode probabilities through a compiled tf.function (much faster than eager)."""
    infer = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    out = [
        infer(tf.constant(batch[i : i + batch_size], tf.float32)).numpy()
        for i in range(0, len(batch), batch_size)
    ]
    return np.concatenate(out).reshape(-1) if out else np.zeros(0, np.float32)


def convert_to_onnx(model: keras.Model, image_size: int, path: Path) -> None:
    import tf2onnx

    spec = (tf.TensorSpec((None, image_size, image_size, 1), tf.float32, name=INPUT_NAME),)
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=OPSET, output_path=str(path))


def export_bundle(
    model: keras.Model,
    out_dir: Path,
    params: PreprocessingParams,
    parity_images: np.ndarray,
    threshold: dict[str, Any],
    extra_card: dict[str, Any] | None = None,
) -> ModelBundle:
    """Save both model files and the card; check ONNX == Keras; return the loaded bundle."""
    if len(parity_images) < MIN_PARITY_IMAGES:
        raise ExportError(
            f"parity needs at least {MIN_PARITY_IMAGES} real images, got {len(parity_images)}"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras_path, onnx_path = out_dir / KERAS_FILE, out_dir / ONNX_FILE
    model.save(keras_path)
    convert_to_onnx(model, params.image_size, onnx_path)

    created = dt.datetime.now(dt.UTC)
    onnx_sha = sha256_file(onnx_path)
    grid = model.get_layer(GRADCAM_LAYER).output.shape[1:3]
    card = ModelCard(
        name="cxr-pneumonia-cnn",
        version=f"{created:%Y.%m.%d}-{onnx_sha[:8]}",
        created_at=created.isoformat(timespec="seconds"),
        task="binary classification of chest X-rays: NORMAL (0) vs PNEUMONIA (1)",
        intended_use=(
            "Research and decision support only; not a medical device. A clinician reads the image."
        ),
        labels=CLASS_NAMES,
        sha256={ONNX_FILE: onnx_sha, KERAS_FILE: sha256_file(keras_path)},
        input=TensorSpec(name=INPUT_NAME, shape=(None, *params.input_shape), range=(0.0, 1.0)),
        outputs=(TensorSpec(name=OUTPUT_NAME, shape=(None, 1), meaning="P(PNEUMONIA)"),),
        preprocessing=params,
        threshold=Threshold(**threshold),
        gradcam=GradCamSpec(
            members=(
                GradCamMember(
                    feature_layer=GRADCAM_LAYER,
                    pooled_layer="head_dropout",
                    dense_layer=OUTPUT_NAME,
                ),
            ),
            grid=(int(grid[0]), int(grid[1])),
        ),
        onnx=OnnxInfo(opset=OPSET),
        software={
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
        **(extra_card or {}),
    )
    card.write(out_dir)

    bundle = ModelBundle.load(out_dir)
    batch = parity_images.astype(np.float32)
    diff = float(np.max(np.abs(keras_probabilities(model, batch) - bundle.predict(batch))))
    parity = Parity(images=len(batch), max_abs_diff=diff, tolerance=PARITY_TOLERANCE)
    card = card.model_copy(update={"onnx": OnnxInfo(opset=OPSET, parity=parity)})
    card.write(out_dir)
    if not diff <= PARITY_TOLERANCE:
        raise ExportError(
            f"ONNX and Keras disagree by {diff:.3g} on {len(batch)} images "
            f"(> {PARITY_TOLERANCE}); {out_dir / CARD_FILE} records it, do not ship this bundle"
        )
    log.info(
        "exported %s: parity max |Keras - ONNX| = %.2e on %d images", out_dir, diff, len(batch)
    )
    return ModelBundle.load(out_dir)
