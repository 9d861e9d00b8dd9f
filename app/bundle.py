"""The model bundle: model.onnx (served), model.keras (Grad-CAM) and model_card.json.

One loader validates a bundle before anything uses it: files present, sha256 of both model files as
the card says, the ONNX input as the card says. Any mismatch raises `BundleError`, one clear line.
Training's export and evaluate use this same loader, so a bundle that loads there loads here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from imaging import PreprocessingParams

ONNX_FILE = "model.onnx"
KERAS_FILE = "model.keras"
CARD_FILE = "model_card.json"


class BundleError(RuntimeError):
    """The bundle is missing, incomplete, corrupt or inconsistent with its card."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_card(bundle_dir: Path) -> dict[str, Any]:
    card_path = Path(bundle_dir) / CARD_FILE
    if not card_path.is_file():
        raise BundleError(f"model card not found: {card_path}")
    try:
        card = json.loads(card_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"model card {card_path} is not valid JSON: {exc}") from exc
    for key in ("version", "sha256", "input", "preprocessing", "threshold", "labels"):
        if key not in card:
            raise BundleError(f"model card {card_path} has no '{key}' field")
    return card


def write_card(bundle_dir: Path, card: dict[str, Any]) -> None:
    (Path(bundle_dir) / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")


def onnx_session(path: Path, intra_op_threads: int = 1) -> ort.InferenceSession:
    """A CPU session with explicit thread counts (spinning threads hurt on a busy 2-core box)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@dataclass
class ModelBundle:
    """A validated bundle with its ONNX session; the Keras model loads on first use."""

    directory: Path
    card: dict[str, Any]
    session: ort.InferenceSession
    preprocessing: PreprocessingParams
    _keras_model: Any = field(default=None, repr=False)

    @property
    def version(self) -> str:
        return str(self.card["version"])

    @property
    def threshold(self) -> float:
        return float(self.card["threshold"]["value"])

    @property
    def labels(self) -> tuple[str, str]:
        """(label for probability < threshold, label at or above it), as training named them."""
        negative, positive = self.card["labels"]
        return str(negative), str(positive)

    @property
    def input_name(self) -> str:
        return str(self.card["input"]["name"])

    @classmethod
    def load(cls, bundle_dir: str | Path, intra_op_threads: int = 1) -> ModelBundle:
        directory = Path(bundle_dir)
        if not directory.is_dir():
            raise BundleError(f"model bundle directory not found: {directory}")
        card = read_card(directory)
        for name in (ONNX_FILE, KERAS_FILE):
            path = directory / name
            if not path.is_file():
                raise BundleError(f"model bundle {directory} is missing {name}")
            expected = card["sha256"].get(name)
            actual = sha256_file(path)
            if expected != actual:
                raise BundleError(
                    f"{path} does not match its model card (sha256 {actual[:12]}..., card says "
                    f"{str(expected)[:12]}...): the file is corrupt or from another bundle"
                )
        try:
            preprocessing = PreprocessingParams.from_dict(card["preprocessing"])
        except (TypeError, ValueError) as exc:
            raise BundleError(f"model card preprocessing is invalid: {exc}") from exc
        try:
            session = onnx_session(directory / ONNX_FILE, intra_op_threads)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BundleError(f"{directory / ONNX_FILE} cannot be loaded: {exc}") from exc
        inputs = session.get_inputs()
        expected_shape = [int(s) for s in card["input"]["shape"][1:]]
        if len(inputs) != 1 or inputs[0].name != card["input"]["name"]:
            raise BundleError(f"ONNX inputs {[i.name for i in inputs]} disagree with the card")
        if list(inputs[0].shape[1:]) != expected_shape or expected_shape != list(
            preprocessing.input_shape
        ):
            raise BundleError(
                f"ONNX input shape {inputs[0].shape} disagrees with the card {expected_shape} "
                f"or the preprocessing {preprocessing.input_shape}"
            )
        return cls(directory, card, session, preprocessing)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """P(pneumonia) for a float32 batch (N, S, S, 1) -> (N,)."""
        (output,) = self.session.run(None, {self.input_name: batch.astype(np.float32, copy=False)})
        return np.asarray(output, dtype=np.float32).reshape(-1)

    def keras_model(self) -> Any:
        """The retained Keras model (for Grad-CAM), loaded once, without its training state."""
        if self._keras_model is None:
            import keras

            try:
                self._keras_model = keras.saving.load_model(
                    self.directory / KERAS_FILE, compile=False
                )
            except Exception as exc:
                raise BundleError(f"{self.directory / KERAS_FILE} cannot be loaded: {exc}") from exc
        return self._keras_model
