"""Why an upload cannot become a model input; each kind maps to one HTTP status in the app."""

from __future__ import annotations


class ImageError(ValueError):
    """Base class of every reason an upload cannot become a model input."""


class UnsupportedImageError(ImageError):
    """The bytes are not an image format the service reads (HTTP 415)."""


class CorruptImageError(ImageError):
    """The bytes claim a supported format but do not decode (HTTP 400)."""


class ImageTooSmallError(ImageError):
    """Too few pixels on a side to be an X-ray (HTTP 400)."""


class ImageTooLargeError(ImageError):
    """The image's pixel count is over the limit (HTTP 413)."""


class NotChestXrayError(ImageError):
    """The image decodes but is not a frontal chest X-ray (HTTP 422, code `not_chest_xray`).

    Raised by the DICOM reader for a lateral view, and by the engine's out-of-distribution guard,
    which attaches its score.
    """

    code = "not_chest_xray"

    def __init__(self, message: str, ood_score: float | None = None) -> None:
        super().__init__(message)
        self.ood_score = ood_score
