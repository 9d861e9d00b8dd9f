"""The model bundle folder: model.onnx (served), model.keras (Grad-CAM), model_card.json, and the
files the card lists beside them (out-of-distribution statistics).

One loader validates a bundle before anything uses it: the card reads, every file it lists is
present with the sha256 it records, and the ONNX graph's input and outputs are the ones it names.
Any mismatch raises `BundleError` with one line that names files, never server paths.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from engine.card import CARD_FILE, CardError, ModelCard

ONNX_FILE = "model.onnx"
KERAS_FILE = "model.keras"

log = logging.getLogger(__name__)


class BundleError(RuntimeError):
    """The bundle is missing, incomplete, corrupt or inconsistent with its card."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def onnx_session(path: Path, intra_op_threads: int = 1) -> ort.InferenceSession:
    """A CPU session with explicit thread counts (spinning threads hurt on a busy 2-core box)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _check_files(directory: Path, card: ModelCard) -> None:
    for name in (ONNX_FILE, KERAS_FILE, *card.sha256):
        path = directory / name
        if not path.is_file():
            raise BundleError(f"the bundle is missing {name}")
        expected = card.sha256.get(name)
        if expected is None:
            raise BundleError(f"{CARD_FILE} records no sha256 for {name}")
        actual = sha256_file(path)
        if expected != actual:
            raise BundleError(
                f"{name} does not match its model card (sha256 {actual[:12]}..., card says "
                f"{expected[:12]}...): the file is corrupt or from another bundle"
            )


def _check_graph(session: ort.InferenceSession, card: ModelCard) -> None:
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].name != card.input.name:
        raise BundleError(f"ONNX inputs {[i.name for i in inputs]} disagree with the card")
    expected = list(card.input.shape[1:])
    if list(inputs[0].shape[1:]) != expected or expected != list(card.preprocessing.input_shape):
        raise BundleError(
            f"ONNX input shape {inputs[0].shape} disagrees with the card {expected} "
            f"or the preprocessing {list(card.preprocessing.input_shape)}"
        )
    graph_outputs = [o.name for o in session.get_outputs()]
    card_outputs = [o.name for o in card.outputs]
    if graph_outputs != card_outputs:
        raise BundleError(f"ONNX outputs {graph_outputs} disagree with the card {card_outputs}")


@dataclass
class ModelBundle:
    """A validated bundle with its ONNX session; the Keras model loads on first use."""

    directory: Path
    card: ModelCard
    session: ort.InferenceSession
    _keras_model: Any = field(default=None, repr=False)

    @property
    def version(self) -> str:
        return self.card.version

    @property
    def threshold(self) -> float:
        return self.card.threshold.value

    @property
    def labels(self) -> tuple[str, str]:
        """(label for probability < threshold, label at or above it), as training named them."""
        return self.card.labels

    @property
    def preprocessing(self):
        return self.card.preprocessing

    @classmethod
    def load(cls, bundle_dir: str | Path, intra_op_threads: int = 1) -> ModelBundle:
        directory = Path(bundle_dir)
        if not directory.is_dir():
            log.error("model bundle folder not found: %s", directory)
            raise BundleError("the model bundle folder was not found (check MODEL_DIR)")
        try:
            card = ModelCard.read(directory)
        except CardError as exc:
            raise BundleError(str(exc)) from exc
        _check_files(directory, card)
        try:
            session = onnx_session(directory / ONNX_FILE, intra_op_threads)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BundleError(f"{ONNX_FILE} cannot be loaded: {type(exc).__name__}") from exc
        _check_graph(session, card)
        return cls(directory, card, session)

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Every graph output for a float32 batch (N, S, S, 1), by name."""
        feed = {self.card.input.name: batch.astype(np.float32, copy=False)}
        names = [o.name for o in self.card.outputs]
        return dict(zip(names, self.session.run(None, feed), strict=True))

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """P(pneumonia) for a float32 batch (N, S, S, 1) -> (N,)."""
        output = self.run(batch)[self.card.probability_output.name]
        return np.asarray(output, dtype=np.float32).reshape(-1)

    def keras_model(self) -> Any:
        """The retained Keras model (for Grad-CAM), loaded once, without its training state."""
        if self._keras_model is None:
            from engine.runtime import import_keras

            keras = import_keras()
            try:
                self._keras_model = keras.saving.load_model(
                    self.directory / KERAS_FILE, compile=False
                )
            except Exception as exc:
                raise BundleError(f"{KERAS_FILE} cannot be loaded: {type(exc).__name__}") from exc
        return self._keras_model
