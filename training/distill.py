"""Training targets from a teacher bundle (distillation).

The teacher is a served bundle (usually the seed ensemble); its calibrated logit is read for every
cached view of a training image (the file itself and its simulated full-resolution uploads) and
averaged, so every view of one film gets the same target. The student thus learns the ensemble's
graded answer and, because the target does not move between a reduced and a full decode or between
JPEG qualities, to give the same answer for each of them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine import ModelBundle
from imaging import PreprocessingParams
from imaging.preprocess import scale_to_unit
from training.calibration import sigmoid
from training.data import EnhancedImages

log = logging.getLogger(__name__)

# Keeps log(p / (1 - p)) finite for a teacher answer of exactly 0 or 1.
_EPSILON = 1e-6


class TeacherError(ValueError):
    """The teacher bundle cannot teach this student (another preprocessing chain)."""


@dataclass(frozen=True)
class Teacher:
    """Where the targets came from, for the student's card."""

    directory: str
    version: str
    onnx_sha256: str
    members: int

    def to_dict(self) -> dict:
        return {
            "bundle": self.directory,
            "version": self.version,
            "onnx_sha256": self.onnx_sha256,
            "members": self.members,
            "targets": "sigmoid of the teacher's calibrated logit averaged over each training "
            "image's cached views (the file and its simulated uploads)",
        }


def logit(probabilities: np.ndarray) -> np.ndarray:
    p = np.clip(probabilities.astype(np.float64), _EPSILON, 1 - _EPSILON)
    return np.log(p / (1 - p))


def view_averaged_targets(probabilities: np.ndarray) -> np.ndarray:
    """(N, V) teacher probabilities -> (N,) sigmoid of the mean logit over the V views."""
    return sigmoid(logit(probabilities).mean(axis=1)).astype(np.float32)


def teacher_targets(
    teacher_dir: Path, data: EnhancedImages, params: PreprocessingParams, batch_size: int = 64
) -> tuple[np.ndarray, Teacher]:
    """The teacher's view-averaged P(pneumonia) for every image of `data`, through its ONNX graph
    (the served answer, one thread per core)."""
    bundle = ModelBundle.load(teacher_dir, intra_op_threads=0)
    if bundle.preprocessing != params:
        raise TeacherError(
            f"the teacher {teacher_dir} was trained on another preprocessing chain "
            f"({bundle.preprocessing.to_dict()} against {params.to_dict()})"
        )
    n, views = data.images.shape[:2]
    flat = data.images.reshape(n * views, *data.images.shape[2:])
    probabilities = np.empty(len(flat), dtype=np.float32)
    for start in range(0, len(flat), batch_size):
        chunk = scale_to_unit(flat[start : start + batch_size], params)
        probabilities[start : start + batch_size] = bundle.predict(chunk)
    targets = view_averaged_targets(probabilities.reshape(n, views))
    agreement = float(np.mean((targets >= 0.5) == (data.labels == 1)))
    log.info(
        "teacher %s: targets for %d images (%d views each); agrees with the labels on %.1f%%",
        bundle.version,
        n,
        views,
        100 * agreement,
    )
    teacher = Teacher(
        directory=str(teacher_dir),
        version=bundle.version,
        onnx_sha256=bundle.card.sha256.get("model.onnx", ""),
        members=len(bundle.card.gradcam.members),
    )
    return targets, teacher
