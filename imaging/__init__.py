"""Floor 1: the one preprocessing chain, bytes -> header -> 8-bit gray -> model tensor.

Training, the engine and the service all run exactly this code, so a film gives the same tensor
wherever it is read. It imports neither TensorFlow nor FastAPI; its parameters travel in the model
card (`PreprocessingParams`).
"""

from imaging.decode import (
    IMAGE_SUFFIXES,
    SUPPORTED_FORMATS,
    ImageHeader,
    colourfulness,
    decode_grayscale,
    is_image_file,
    probe_image,
)
from imaging.dicom import DicomFacts
from imaging.errors import (
    CorruptImageError,
    ImageError,
    ImageTooLargeError,
    ImageTooSmallError,
    NotChestXrayError,
    UnsupportedImageError,
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
from imaging.statistics import gray_statistics

__all__ = [
    "IMAGE_SUFFIXES",
    "SUPPORTED_FORMATS",
    "CorruptImageError",
    "DicomFacts",
    "ImageError",
    "ImageHeader",
    "ImageTooLargeError",
    "ImageTooSmallError",
    "NotChestXrayError",
    "PreprocessingParams",
    "UnsupportedImageError",
    "colourfulness",
    "decode_grayscale",
    "decode_upload",
    "enhance_bytes",
    "enhance_grayscale",
    "gray_statistics",
    "is_image_file",
    "preprocess_bytes",
    "preprocess_file",
    "preprocess_grayscale",
    "probe_image",
]
