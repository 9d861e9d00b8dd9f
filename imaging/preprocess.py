"""Grayscale X-ray -> model input: resize, median filter, CLAHE, scale to [0, 1].

Resizing comes first: the filters then run on 150x150 pixels whatever the upload's size, which is
cheaper and makes the result depend on the image, not on its resolution. INTER_AREA averages every
source pixel, so a 2000 px original and its 299 px copy land on nearly the same 150 px picture.
The aspect ratio is not kept: the training images were squashed to a square the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from imaging.decode import ImageHeader, decode_grayscale, probe_image


@dataclass(frozen=True)
class PreprocessingParams:
    """Every knob of the chain; written into the model card and read back by the service."""

    image_size: int = 150
    median_ksize: int = 3
    clahe_clip_limit: float = 2.0
    clahe_tile_grid: int = 8
    scale: float = 1.0 / 255.0
    interpolation: str = "area"
    # Large JPEGs decode at 1/2, 1/4 or 1/8 scale while their short side stays >= this many pixels.
    jpeg_reduced_min_side: int = 300

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PreprocessingParams:
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown preprocessing parameters in model card: {unknown}")
        return cls(**known)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.image_size, self.image_size, 1)


_INTERPOLATIONS = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}


def enhance_grayscale(gray: np.ndarray, params: PreprocessingParams) -> np.ndarray:
    """Resize, median filter and CLAHE: uint8 HxW in, uint8 image_size x image_size out."""
    size = params.image_size
    resized = cv2.resize(gray, (size, size), interpolation=_INTERPOLATIONS[params.interpolation])
    filtered = cv2.medianBlur(resized, params.median_ksize) if params.median_ksize > 1 else resized
    clahe = cv2.createCLAHE(
        clipLimit=params.clahe_clip_limit,
        tileGridSize=(params.clahe_tile_grid, params.clahe_tile_grid),
    )
    return clahe.apply(filtered)


def scale_to_unit(enhanced: np.ndarray, params: PreprocessingParams) -> np.ndarray:
    """uint8 HxW -> float32 HxWx1 in [0, 1]; training does the same multiply in TensorFlow."""
    return (enhanced.astype(np.float32) * np.float32(params.scale))[..., np.newaxis]


def preprocess_grayscale(gray: np.ndarray, params: PreprocessingParams) -> np.ndarray:
    """Decoded 8-bit grayscale image -> float32 model input (image_size, image_size, 1)."""
    return scale_to_unit(enhance_grayscale(gray, params), params)


def decode_upload(
    data: bytes, params: PreprocessingParams, max_pixels: int | None = None
) -> tuple[ImageHeader, np.ndarray]:
    """Encoded bytes -> (header, 8-bit grayscale), checked and decoded as the chain needs it."""
    header = probe_image(data, max_pixels=max_pixels)
    return header, decode_grayscale(data, header, min_side=params.jpeg_reduced_min_side)


def enhance_bytes(
    data: bytes, params: PreprocessingParams, max_pixels: int | None = None
) -> np.ndarray:
    """Encoded image bytes -> the enhanced uint8 picture (what training caches)."""
    return enhance_grayscale(decode_upload(data, params, max_pixels)[1], params)


def preprocess_bytes(
    data: bytes, params: PreprocessingParams, max_pixels: int | None = None
) -> np.ndarray:
    """Encoded image bytes -> float32 model input; raises an `ImageError` subclass on bad input."""
    return scale_to_unit(enhance_bytes(data, params, max_pixels), params)


def preprocess_file(path: str | Path, params: PreprocessingParams) -> np.ndarray:
    """A file on disk -> float32 model input, by exactly the upload path."""
    return preprocess_bytes(Path(path).read_bytes(), params)
