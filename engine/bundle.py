"""The model bundle folder: model.onnx (served), model.keras (Grad-CAM), model_card.json, and the
files the card lists beside them (out-of-distribution statistics).

One loader validates a bundle before anything uses it: the card reads, every file it lists is
present with the sha256 it records, and the ONNX graph's input and outputs are the ones it names.
Any mismatch raises `BundleError` with one line that names files, never server paths.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from engine.card import CARD_FILE, CardError, ModelCard

ONNX_FILE = "model.onnx"
KERAS_FILE = "model.keras"
GRADCAM_FILE = "gradcam.onnx"  # optional: the served outputs and the Grad-CAM map in one graph

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
    graph = (card.gradcam.graph,) if card.gradcam.graph else ()
    for name in (ONNX_FILE, KERAS_FILE, *graph, *card.sha256):
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


def _check_graph(session: ort.InferenceSession, card: ModelCard, name: str = ONNX_FILE) -> None:
    """The graph's input and outputs are the card's; the Grad-CAM graph adds the map's output."""
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].name != card.input.name:
        raise BundleError(f"{name} inputs {[i.name for i in inputs]} disagree with the card")
    expected = list(card.input.shape[1:])
    if list(inputs[0].shape[1:]) != expected or expected != list(card.preprocessing.input_shape):
        raise BundleError(
            f"{name} input shape {inputs[0].shape} disagrees with the card {expected} "
            f"or the preprocessing {list(card.preprocessing.input_shape)}"
        )
    graph_outputs = [o.name for o in session.get_outputs()]
    card_outputs = [o.name for o in card.outputs]
    if name != ONNX_FILE:
        card_outputs.append(card.gradcam.graph_output)
    if graph_outputs != card_outputs:
        raise BundleError(f"{name} outputs {graph_outputs} disagree with the card {card_outputs}")


@dataclass
class ModelBundle:
    """A validated bundle with its ONNX session; the Keras model loads on first use.

    Sessions are kept per graph and thread count: a prediction that has the process to itself
    may run on every core, while concurrent ones run one thread each (engine.predictor).
    """

    directory: Path
    card: ModelCard
    session: ort.InferenceSession
    intra_op_threads: int = 1
    _keras_model: Any = field(default=None, repr=False)
    _sessions: dict[tuple[str, int], ort.InferenceSession] = field(default_factory=dict, repr=False)
    _sessions_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

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
        bundle = cls(directory, card, session, intra_op_threads)
        bundle._sessions[(ONNX_FILE, intra_op_threads)] = session
        return bundle

    @property
    def has_gradcam_graph(self) -> bool:
        return self.card.gradcam.graph is not None

    def _session(self, name: str, threads: int | None) -> ort.InferenceSession:
        """`name`'s session on `threads` intra-op threads (None: the bundle's), loaded once and
        checked against the card like model.onnx's (every file's sha256 was checked at load)."""
        key = (name, self.intra_op_threads if threads is None else threads)
        session = self._sessions.get(key)
        if session is not None:
            return session
        with self._sessions_lock:
            if key not in self._sessions:
                try:
                    session = onnx_session(self.directory / name, key[1])
                except Exception as exc:
                    raise BundleError(f"{name} cannot be loaded: {type(exc).__name__}") from exc
                _check_graph(session, self.card, name)
                self._sessions[key] = session
        return self._sessions[key]

    def gradcam_session(self, threads: int | None = None) -> ort.InferenceSession:
        """The Grad-CAM graph's session (the served outputs and the map in one call)."""
        if self.card.gradcam.graph is None:
            raise BundleError(f"{CARD_FILE} names no Grad-CAM graph")
        return self._session(self.card.gradcam.graph, threads)

    def run_gradcam(self, image: np.ndarray, threads: int | None = None) -> dict[str, np.ndarray]:
        """The Grad-CAM graph's outputs for one float32 (S, S, 1) input, by name."""
        return self._outputs(self.gradcam_session(threads), image[np.newaxis])

    def run(self, batch: np.ndarray, threads: int | None = None) -> dict[str, np.ndarray]:
        """Every graph output for a float32 batch (N, S, S, 1), by name."""
        session = self.session if threads is None else self._session(ONNX_FILE, threads)
        return self._outputs(session, batch)

    def _outputs(self, session: ort.InferenceSession, batch: np.ndarray) -> dict[str, np.ndarray]:
        """A session's outputs by name (checked against the card when it was loaded)."""
        feed = {self.card.input.name: batch.astype(np.float32, copy=False)}
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(None, feed), strict=True))

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
