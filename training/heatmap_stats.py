"""Where the Grad-CAM maps point: on the film's edge, or inside the thorax?

Two figures per map: whether its peak lies on the outer ring of a 10x10 grid (the film's edge,
where labels and markers sit), and the share of its mass inside the central thorax box. The ring is
read on 10x10 whatever the map's own grid: the outer ring of a finer grid is a thinner band, so a
19x19 map would look better on its own grid for geometry alone (the first-round model's maps, and
the issue that set the target, were 10x10).
"""

from __future__ import annotations

import cv2
import numpy as np

from engine.overlay import PEAK_OPACITY

# The lungs and heart of a frontal chest film sit in roughly this box (fractions of W, then H).
THORAX_BOX = (0.15, 0.85, 0.10, 0.90)


RING_GRID = 10


def peak_on_ring(cam: np.ndarray, grid: int | None = RING_GRID) -> bool:
    """Whether the map's peak lies in the outer row or column of a `grid` x `grid` grid (area
    resampling); on the map's own grid when `grid` is None."""
    if grid is not None and cam.shape != (grid, grid):
        cam = cv2.resize(cam.astype(np.float32), (grid, grid), interpolation=cv2.INTER_AREA)
    row, col = np.unravel_index(int(np.argmax(cam)), cam.shape)
    return row in (0, cam.shape[0] - 1) or col in (0, cam.shape[1] - 1)


def mass_inside(cam: np.ndarray, size: int = 150, box: tuple = THORAX_BOX) -> float:
    """Share of the (upsampled, non-negative) map inside `box`; NaN for an empty map."""
    big = cv2.resize(cam.astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    big = big.clip(0, None)
    x0, x1, y0, y1 = (
        int(box[0] * size),
        int(box[1] * size),
        int(box[2] * size),
        int(box[3] * size),
    )
    total = float(big.sum())
    return float(big[y0:y1, x0:x1].sum() / total) if total > 0 else float("nan")


def summarize_maps(cams: list[np.ndarray]) -> dict[str, float | int]:
    empty = [c.max() < 1e-6 for c in cams]
    kept = [c for c, e in zip(cams, empty, strict=True) if not e]
    ring = [peak_on_ring(c) for c in kept]
    native_ring = [peak_on_ring(c, grid=None) for c in kept]
    mass = [mass_inside(c) for c in kept]
    return {
        "maps": len(cams),
        "empty_maps": int(sum(empty)),
        "peak_on_outer_ring_share": float(np.mean(ring)) if ring else float("nan"),
        "peak_on_ring_or_empty_share": float((sum(ring) + sum(empty)) / max(len(cams), 1)),
        "ring_grid": [RING_GRID, RING_GRID],
        "peak_on_own_grid_ring_share": float(np.mean(native_ring)) if ring else float("nan"),
        "median_mass_in_thorax_box": float(np.median(mass)) if mass else float("nan"),
        "thorax_box": list(THORAX_BOX),
    }


def colour_mass(cam: np.ndarray, probability: float) -> float:
    """Mean opacity of the overlay's colours over the whole film (0 = the film alone): what a
    reader sees of the map, which the overlay scales by the calibrated probability."""
    return float(PEAK_OPACITY * float(np.clip(probability, 0, 1)) * np.clip(cam, 0, 1).mean())


def colour_by_answer(
    cams: list[np.ndarray], probabilities: np.ndarray, threshold: float
) -> dict[str, float | int]:
    """Mean colour mass on the films answered NORMAL and on those answered PNEUMONIA."""
    probabilities = np.asarray(probabilities, np.float64)
    mass = np.array([colour_mass(c, p) for c, p in zip(cams, probabilities, strict=True)])
    positive = probabilities >= threshold
    return {
        "normal_answers": int((~positive).sum()),
        "pneumonia_answers": int(positive.sum()),
        "mean_colour_mass_normal_answers": float(mass[~positive].mean())
        if (~positive).any()
        else float("nan"),
        "mean_colour_mass_pneumonia_answers": float(mass[positive].mean())
        if positive.any()
        else float("nan"),
        "peak_opacity": PEAK_OPACITY,
    }
