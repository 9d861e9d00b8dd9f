"""The one preprocessing chain shared by training and the service.

Bytes in, the model's input tensor out. It imports neither TensorFlow nor FastAPI, so the service
and the trainer run exactly the same code (DESIGN.md). Its parameters travel in the model card.
"""

from imaging.decode import (
    IMAGE_SUFFIXES,
    SUPPORTED_FORMATS,
    CorruptImageError,
    ImageError,
    ImageHeader,
    ImageTooLargeError,
    ImageTooSmallError,
    UnsupportedImageError,
    decode_grayscale,
    probe_image,
)
from imaging.preprocess import (
    PreprocessingParams,
    decode_upload,
    enhance_bytes,
    enhance_grayscale,
    preprocess_bytes,
    preprocess_file,
    preprocess_grayscale,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "SUPPORTED_FORMATS",
    "CorruptImageError",
    "ImageError",
    "ImageHeader",
    "ImageTooLargeError",
    "ImageTooSmallError",
    "PreprocessingParams",
    "UnsupportedImageError",
    "decode_grayscale",
    "decode_upload",
    "enhance_bytes",
    "enhance_grayscale",
    "preprocess_bytes",
    "preprocess_file",
    "preprocess_grayscale",
    "probe_image",
]
