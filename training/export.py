"""Write a model bundle: model.keras, model.onnx (tf2onnx, opset 17), gradcam.onnx (the same graph
with Grad-CAM, training/gradcam_graph.py), ood_stats.npz and the card.

Export refuses to finish unless ONNX Runtime reproduces Keras on real preprocessed images, for
every output, within the parity bound; the measured difference goes into the card.
"""

from __future__ import annotations

import datetime as dt
import logging
import platform
import shutil
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from engine import ModelBundle, ModelCard
from engine.bundle import KERAS_FILE, ONNX_FILE, sha256_file
from engine.card import CARD_FILE, Calibration, OnnxInfo, Parity, TensorSpec, Threshold
from engine.ood import OodGuard
from engine.runtime import stderr_without_chatter
from imaging import PreprocessingParams
from training.calibration import calibration_gain
from training.data import CLASS_NAMES
from training.model import INPUT_NAME
from training.ood import save_stats
from training.serving import FEATURES_OUTPUT, PROBABILITY_OUTPUT, ServingGraph

log = logging.getLogger(__name__)

OPSET = 17
# Absolute, on the probability (the answer) where the calibration does not magnify; where it does
# (a steep slope), on the networks' mean logit: a film passes when |dp| <= tolerance * max(1,
# slope * p * (1 - p)), i.e. its probability or its implied logit difference is within 1e-5.
PARITY_TOLERANCE = 1e-5
# Relative (to 1 + |value|), on the pooled features: float32 sums over whole feature maps, read
# only by the guard, whose score moves by far less than its 5% margin at this tolerance.
FEATURES_TOLERANCE = 1e-4
MIN_PARITY_IMAGES = 32


class ExportError(RuntimeError):
    """Export could not produce a bundle that serves what Keras computes."""


def keras_outputs(model: keras.Model, batch: np.ndarray, batch_size: int = 64) -> list[np.ndarray]:
    """Every output in inference mode (Keras's compiled predict)."""
    out = model.predict(batch.astype(np.float32), batch_size=batch_size, verbose=0)
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


def convert_to_onnx(model: keras.Model, image_size: int, path: Path) -> None:
    import tf2onnx

    spec = (tf.TensorSpec((None, image_size, image_size, 1), tf.float32, name=INPUT_NAME),)
    with stderr_without_chatter():  # grappler's C++ INFO lines during conversion
        tf2onnx.convert.from_keras(model, input_signature=spec, opset=OPSET, output_path=str(path))


def parity(
    model: keras.Model, bundle: ModelBundle, batch: np.ndarray, slope: float = 1.0
) -> Parity:
    """How far ONNX is from Keras: on the probability (scaled per film by the calibration's
    magnification, `calibration_gain`), and relative on the features."""
    expected = dict(
        zip([o.name for o in bundle.card.outputs], keras_outputs(model, batch), strict=True)
    )
    served = bundle.run(batch)
    differences = np.abs(served[PROBABILITY_OUTPUT] - expected[PROBABILITY_OUTPUT]).reshape(-1)
    probability = float(differences.max())
    scaled = float((differences / calibration_gain(expected[PROBABILITY_OUTPUT], slope)).max())
    features = None
    if FEATURES_OUTPUT in expected:
        reference = expected[FEATURES_OUTPUT]
        features = float(
            (np.abs(served[FEATURES_OUTPUT] - reference) / (1 + np.abs(reference))).max()
        )
    return Parity(
        images=len(batch),
        max_abs_diff=probability,
        max_scaled_diff=scaled,
        tolerance=PARITY_TOLERANCE,
        features_max_rel_diff=features,
        features_tolerance=FEATURES_TOLERANCE if features is not None else None,
    )


def export_bundle(
    graph: ServingGraph,
    out_dir: Path,
    params: PreprocessingParams,
    parity_images: np.ndarray,
    threshold: Threshold,
    calibration: Calibration | None,
    guard: OodGuard,
    extra_card: dict[str, Any] | None = None,
    carried_files: tuple[Path, ...] = (),
) -> ModelBundle:
    """Save the served graph, its ONNX twin, the guard's statistics and the card; check parity.
    `carried_files` (e.g. another bundle's population check) are copied in and listed."""
    if len(parity_images) < MIN_PARITY_IMAGES:
        raise ExportError(
            f"parity needs at least {MIN_PARITY_IMAGES} real images, got {len(parity_images)}"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras_path, onnx_path = out_dir / KERAS_FILE, out_dir / ONNX_FILE
    graph.model.save(keras_path)
    convert_to_onnx(graph.model, params.image_size, onnx_path)
    stats_path = save_stats(guard, out_dir)
    carried = {}
    for source in carried_files:
        shutil.copyfile(source, out_dir / source.name)
        carried[source.name] = sha256_file(out_dir / source.name)

    created = dt.datetime.now(dt.UTC)
    onnx_sha = sha256_file(onnx_path)
    width = guard.width
    card = ModelCard(
        name="cxr-pneumonia-cnn",
        version=f"{created:%Y.%m.%d}-{onnx_sha[:8]}",
        created_at=created.isoformat(timespec="seconds"),
        task="binary classification of chest X-rays: NORMAL (0) vs PNEUMONIA (1)",
        intended_use=(
            "Research and decision support only; not a medical device. A clinician reads the image."
        ),
        labels=CLASS_NAMES,
        sha256={
            ONNX_FILE: onnx_sha,
            KERAS_FILE: sha256_file(keras_path),
            stats_path.name: sha256_file(stats_path),
            **carried,
        },
        input=TensorSpec(name=INPUT_NAME, shape=(None, *params.input_shape), range=(0.0, 1.0)),
        outputs=(
            TensorSpec(name=PROBABILITY_OUTPUT, shape=(None, 1), meaning="calibrated P(PNEUMONIA)"),
            TensorSpec(
                name=FEATURES_OUTPUT,
                shape=(None, width),
                meaning="per-block global-average-pooled features of every member (the guard's)",
            ),
        ),
        preprocessing=params,
        threshold=threshold,
        # The Grad-CAM graph is written and recorded below, once the rest loads (a spec carried
        # over from another bundle, as site calibration does, names that bundle's graph).
        gradcam=graph.gradcam.model_copy(update={"graph": None, "parity": None}),
        calibration=calibration,
        ood=guard.spec,
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
    slope = calibration.slope if calibration is not None else 1.0
    checked = parity(graph.model, bundle, parity_images.astype(np.float32), slope)
    card = card.model_copy(update={"onnx": OnnxInfo(opset=OPSET, parity=checked)})
    card.write(out_dir)
    features_ok = (checked.features_max_rel_diff or 0.0) <= FEATURES_TOLERANCE
    if not (checked.max_scaled_diff <= PARITY_TOLERANCE and features_ok):
        raise ExportError(
            f"ONNX and Keras disagree on {checked.images} images (probability by "
            f"{checked.max_abs_diff:.3g}, {checked.max_scaled_diff:.3g} once the calibration's "
            f"slope {slope:.3g} is allowed for, limit {PARITY_TOLERANCE}; features by "
            f"{checked.features_max_rel_diff or 0.0:.3g}, limit {FEATURES_TOLERANCE}); "
            f"{CARD_FILE} records it, do not ship this bundle"
        )
    from training.gradcam_graph import add_gradcam_graph

    maps = add_gradcam_graph(graph.model, out_dir, parity_images[:MIN_PARITY_IMAGES])
    log.info(
        "exported %s: parity max |Keras - ONNX| = %.2e on %d images (features %.2e relative); "
        "Grad-CAM graph max |TensorFlow - ONNX| = %.2e",
        out_dir,
        checked.max_abs_diff,
        checked.images,
        checked.features_max_rel_diff or 0.0,
        maps.max_abs_diff,
    )
    return ModelBundle.load(out_dir)
