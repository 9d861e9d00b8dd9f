"""The monitoring reference in a bundle: what the validation films looked like as uploads.

`monitoring_reference.npz` holds, per reference film, the signals monitoring compares a window of
answers with (probability, mean logit, predicted label, guard and population scores, gray-level
statistics, a summary of the pooled features) and the principal axes that summary is read on: the
first few principal components of the reference's pooled features, so a record stores eight
numbers instead of two thousand.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

REFERENCE_FILE = "monitoring_reference.npz"
COMPONENTS = 8
STAT_NAMES = ("mean", "std", "p05", "p50", "p95")


@dataclass(frozen=True)
class MonitoringReference:
    axes_mean: np.ndarray  # (width,)
    axes: np.ndarray  # (COMPONENTS, width)
    signals: dict[str, np.ndarray]  # name -> (films,) per reference film

    @classmethod
    def load(cls, path: Path) -> MonitoringReference:
        with np.load(path, allow_pickle=False) as stored:
            signals = {
                key.removeprefix("signal_"): stored[key]
                for key in stored.files
                if key.startswith("signal_")
            }
            return cls(stored["axes_mean"], stored["axes"], signals)

    def summary(self, features: np.ndarray) -> list[float]:
        """The pooled features on the reference's principal axes (what a record keeps)."""
        projected = self.axes @ (np.asarray(features, np.float64).reshape(-1) - self.axes_mean)
        return [round(float(v), 5) for v in projected]

    def save(self, path: Path) -> Path:
        np.savez(
            path,
            axes_mean=self.axes_mean,
            axes=self.axes,
            **{f"signal_{k}": v for k, v in self.signals.items()},
        )
        return path


def principal_axes(features: np.ndarray, count: int = COMPONENTS) -> tuple[np.ndarray, np.ndarray]:
    """(mean, the first `count` principal directions) of a set of feature vectors."""
    features = np.asarray(features, np.float64)
    mean = features.mean(axis=0)
    _, _, vt = np.linalg.svd(features - mean, full_matrices=False)
    return mean, vt[:count]
