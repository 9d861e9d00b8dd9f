"""What each refusal is called and which HTTP status answers it: shared by the HTTP service,
its records and the DICOM node's records (no web framework here)."""

from __future__ import annotations

from engine.population import OutsidePopulationError
from imaging import (
    CorruptImageError,
    ImageError,
    ImageTooLargeError,
    ImageTooSmallError,
    NotChestXrayError,
    UnsupportedImageError,
)

# (kind, HTTP status, refusal reason in metrics and logs), most specific first.
IMAGE_ERRORS: tuple[tuple[type[ImageError], int, str], ...] = (
    (NotChestXrayError, 422, "not_chest_xray"),
    (OutsidePopulationError, 422, "outside_population"),
    (ImageTooLargeError, 413, "too_large"),
    (UnsupportedImageError, 415, "unsupported_format"),
    (ImageTooSmallError, 400, "too_small"),
    (CorruptImageError, 400, "undecodable"),
    (ImageError, 400, "bad_image"),
)


def status_and_reason(exc: ImageError) -> tuple[int, str]:
    return next((status, why) for kind, status, why in IMAGE_ERRORS if isinstance(exc, kind))
