"""How far an answer moves under differences no one can see on the film.

Three perturbations of the same picture, each scored through the service's own path (bytes ->
chain -> model): the whole film one gray level brighter, the film re-encoded as JPEG quality 90,
and a full-resolution JPEG upload decoded fully instead of at reduced scale.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import cv2
import numpy as np

from imaging import (
    PreprocessingParams,
    decode_grayscale,
    decode_upload,
    preprocess_grayscale,
    probe_image,
)

FULL_RESOLUTION_SIDE = (1600, 2600)  # simulated upload sizes, long side in pixels


def png(gray: np.ndarray) -> bytes:
    return cv2.imencode(".png", gray, [cv2.IMWRITE_PNG_COMPRESSION, 1])[1].tobytes()


def jpeg(gray: np.ndarray, quality: int) -> bytes:
    return cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


Chain = Callable[[np.ndarray, PreprocessingParams], np.ndarray]  # 8-bit gray -> model input


def tensor(data: bytes, params: PreprocessingParams, chain: Chain = preprocess_grayscale):
    return chain(decode_upload(data, params)[1], params)


def perturbation_pairs(
    data: bytes,
    params: PreprocessingParams,
    rng: np.random.Generator,
    chain: Chain = preprocess_grayscale,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(reference tensor, perturbed tensor) for each perturbation of one encoded film, through the
    service's chain (or `chain`, a candidate, for benchmarks.chain_sensitivity)."""
    gray = decode_grayscale(data, probe_image(data))
    brighter = np.clip(gray.astype(np.int16) + 1, 0, 255).astype(np.uint8)
    reference = tensor(png(gray), params, chain)
    long_side = int(rng.uniform(*FULL_RESOLUTION_SIDE))
    aspect = rng.uniform(1.0, 1.4)
    h, w = gray.shape
    size = (long_side, int(long_side / aspect)) if w >= h else (int(long_side / aspect), long_side)
    upload = jpeg(cv2.resize(gray, size, interpolation=cv2.INTER_CUBIC), 95)
    full_decode = replace(params, jpeg_reduced_min_side=1 << 30)
    return {
        "gray_level_plus_1": (reference, tensor(png(brighter), params, chain)),
        "jpeg_quality_90": (reference, tensor(jpeg(gray, 90), params, chain)),
        "full_vs_reduced_jpeg_decode": (
            tensor(upload, params, chain),
            tensor(upload, full_decode, chain),
        ),
    }


def summarize(changes: np.ndarray) -> dict[str, float]:
    changes = np.abs(np.asarray(changes, np.float64))
    return {
        "n": int(changes.size),
        "median": float(np.median(changes)),
        "p99": float(np.percentile(changes, 99)),
        "max": float(changes.max()),
    }
