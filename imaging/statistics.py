"""A film's gray-level statistics, for watching drift (a new machine, other post-processing).

Read from every 8th row and column: a full-resolution film has a few million pixels, and these
five figures move by far less than any change worth an alarm when read from 1/64 of them.
"""

from __future__ import annotations

import cv2
import numpy as np

STRIDE = 8
PERCENTILES = (5, 50, 95)


def gray_statistics(gray: np.ndarray) -> dict[str, float]:
    """Mean, standard deviation and the 5th, 50th and 95th percentiles of an 8-bit film."""
    sample = np.ascontiguousarray(gray[::STRIDE, ::STRIDE])
    if sample.size < 64:
        sample = np.ascontiguousarray(gray)
    mean, std = cv2.meanStdDev(sample)
    histogram = cv2.calcHist([sample], [0], None, [256], [0, 256]).reshape(-1)
    cumulative = np.cumsum(histogram) / max(1.0, float(histogram.sum()))
    stats = {"mean": float(mean[0, 0]), "std": float(std[0, 0])}
    for p in PERCENTILES:
        stats[f"p{p:02d}"] = float(np.searchsorted(cumulative, p / 100.0))
    return stats
