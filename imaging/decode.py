"""Identify and decode an uploaded X-ray into an 8-bit grayscale array.

The format is read from the bytes (DICOM by its DICM magic, JPEG and PNG by Pillow, which parses
only the header), never from a file name or content type, and the pixel count is checked before any
full decode so a decompression bomb costs nothing. OpenCV decodes JPEG and PNG: it applies EXIF
orientation, converts RGB/RGBA/CMYK/palette to gray and can decode a JPEG at 1/2, 1/4 or 1/8 scale,
which is all a 150 px model needs from a 2000 px upload. DICOM goes through `imaging.dicom`.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from imaging import dicom
from imaging.errors import (
    CorruptImageError,
    ImageTooLargeError,
    ImageTooSmallError,
    UnsupportedImageError,
)

SUPPORTED_FORMATS = ("JPEG", "PNG", "DICOM")
# File names a folder scan picks up (training data, batch scoring); uploads are judged by bytes.
# Files without a suffix are picked up too when they are DICOM (PACS exports often have none).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".dcm", ".dicom"})
# Below this many pixels on a side a picture cannot be a chest X-ray (1x1 pixels, 4000x2 strips).
MIN_IMAGE_SIDE = 32

# Pillow's own bomb guard would fire before ours; we enforce our limit explicitly instead.
Image.MAX_IMAGE_PIXELS = None

_REDUCED_JPEG_FLAGS = {
    1: cv2.IMREAD_GRAYSCALE,
    2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
    4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
    8: cv2.IMREAD_REDUCED_GRAYSCALE_8,
}


@dataclass(frozen=True)
class ImageHeader:
    """What the header says, before any pixel is decoded."""

    format: str
    width: int
    height: int
    mode: str
    dicom: dicom.DicomFacts | None = None
    # The parsed DICOM dataset, kept so the pixels are not parsed twice.
    dataset: Any = field(default=None, repr=False, compare=False)

    @property
    def pixels(self) -> int:
        return self.width * self.height


def is_image_file(path: Path) -> bool:
    """Whether a folder scan should pick this file up (by suffix, or DICOM magic if it has none)."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return True
    if path.suffix:
        return False
    try:
        with open(path, "rb") as handle:
            return dicom.is_dicom(handle.read(dicom.PREAMBLE_BYTES + 4))
    except OSError:
        return False


def probe_image(data: bytes, max_pixels: int | None = None) -> ImageHeader:
    """Read format and size from the header only; refuse unsupported, empty or oversized images."""
    if not data:
        raise CorruptImageError("the upload is empty (0 bytes)")
    if dicom.is_dicom(data):
        dataset = dicom.parse(data)
        width, height, facts = dicom.check(dataset, max_pixels, MIN_IMAGE_SIDE)
        return ImageHeader("DICOM", width, height, facts.photometric_interpretation, facts, dataset)
    if dicom.looks_like_bare_dataset(data):
        raise UnsupportedImageError(
            "this looks like a DICOM dataset without its Part 10 header (128-byte preamble and "
            "DICM); send the DICOM file as stored"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as img:
                header = ImageHeader(img.format or "", int(img.width), int(img.height), img.mode)
    except Image.UnidentifiedImageError as exc:
        raise UnsupportedImageError(
            f"not a supported image; send one of: {', '.join(SUPPORTED_FORMATS)}"
        ) from exc
    except Exception as exc:  # a header Pillow recognises but cannot parse
        raise CorruptImageError(f"the image header cannot be read: {type(exc).__name__}") from exc
    if header.format not in SUPPORTED_FORMATS:
        raise UnsupportedImageError(
            f"{header.format or 'this'} images are not supported; send one of: "
            f"{', '.join(SUPPORTED_FORMATS)}"
        )
    if min(header.width, header.height) < MIN_IMAGE_SIDE:
        raise ImageTooSmallError(
            f"the image is {header.width}x{header.height} pixels; a chest X-ray needs at least "
            f"{MIN_IMAGE_SIDE} on each side"
        )
    if max_pixels is not None and header.pixels > max_pixels:
        raise ImageTooLargeError(
            f"the image has {header.width}x{header.height} = {header.pixels} pixels, "
            f"over the limit of {max_pixels}"
        )
    return header


def jpeg_reduction_factor(header: ImageHeader, min_side: int) -> int:
    """Largest JPEG DCT scale-down (1, 2, 4, 8) that keeps the short side at least `min_side`."""
    if header.format != "JPEG":
        return 1
    short = min(header.width, header.height)
    for factor in (8, 4, 2):
        if short // factor >= min_side:
            return factor
    return 1


def decode_grayscale(data: bytes, header: ImageHeader, min_side: int = 0) -> np.ndarray:
    """Decode to a 2-D uint8 array, EXIF orientation applied, 16-bit scaled down to 8-bit.

    `min_side` > 0 lets a large JPEG decode at reduced scale while keeping at least that many pixels
    on its short side.
    """
    if header.format == "DICOM":
        return dicom.to_gray8(header.dataset if header.dataset is not None else dicom.parse(data))
    buf = np.frombuffer(data, dtype=np.uint8)
    factor = jpeg_reduction_factor(header, min_side) if min_side > 0 else 1
    try:
        if header.format == "JPEG":
            image = cv2.imdecode(buf, _REDUCED_JPEG_FLAGS[factor])
        else:
            # ANYDEPTH keeps 16-bit samples so they are scaled, not truncated, to 8 bits below.
            image = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE | cv2.IMREAD_ANYDEPTH)
    except cv2.error as exc:
        raise CorruptImageError(f"the {header.format} data cannot be decoded") from exc
    if image is None or image.size == 0:
        raise CorruptImageError(f"the {header.format} data is truncated or corrupt")
    if image.ndim == 3:  # defensive: some codecs ignore the grayscale flag
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.dtype == np.uint16:
        image = (image.astype(np.float32) * (255.0 / 65535.0) + 0.5).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise CorruptImageError(f"unsupported sample type {image.dtype}")
    return image


# Pillow modes that cannot hold colour.
_GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})


def colourfulness(data: bytes, header: ImageHeader) -> float:
    """How colourful the picture is (Hasler and Suesstrunk's metric on a 128 px thumbnail): 0 for
    a gray film, even one stored as RGB; 30-130 for colour photographs. DICOM counts as gray."""
    if header.format not in ("JPEG", "PNG") or header.mode in _GRAY_MODES:
        return 0.0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as img:
                img.draft("RGB", (128, 128))  # JPEG: decode at 1/2..1/8 scale, nearly free
                rgb = np.asarray(img.convert("RGB").resize((128, 128)), np.float32)
    except Exception as exc:  # the full decode reports the corrupt file; this one only measures
        raise CorruptImageError(f"the {header.format} data cannot be decoded") from exc
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg, yb = red - green, 0.5 * (red + green) - blue
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))
