"""Turn a 299 px training JPEG into something like a real upload, once per cached variant; and
make the "invisible twin" of an upload, the same picture with a difference no one can see.

The data set's images were squashed to 299x299 and re-encoded; real uploads are originals of 1000 to
2800 px, not square, with their own exposure and compression. Each variant stretches the image to a
random aspect ratio and size, jitters gamma and contrast, and re-encodes it as JPEG or PNG, so the
result reaches the model through exactly the bytes-in path the service uses. A twin differs by a
gray level or two and a JPEG re-encoding, or is the same JPEG decoded at full instead of reduced
scale: training asks the model to give both the same answer.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from imaging import (
    PreprocessingParams,
    decode_grayscale,
    decode_upload,
    enhance_grayscale,
    probe_image,
)


def simulate_upload(data: bytes, rng: np.random.Generator) -> bytes:
    """Encoded image -> encoded image at another size, aspect, exposure and compression."""
    gray = decode_grayscale(data, probe_image(data))
    long_side = int(rng.uniform(400, 2200))
    aspect = rng.uniform(1.0, 1.5)
    width, height = (long_side, int(long_side / aspect))
    if rng.random() < 0.3:
        width, height = height, width
    interpolation = cv2.INTER_CUBIC if rng.random() < 0.5 else cv2.INTER_LINEAR
    resized = cv2.resize(gray, (width, height), interpolation=interpolation)

    gamma = np.exp(rng.uniform(np.log(0.75), np.log(1.33)))
    contrast = rng.uniform(0.8, 1.2)
    brightness = rng.uniform(-15, 15)
    lut = 255.0 * (np.arange(256) / 255.0) ** gamma
    lut = np.clip((lut - 128.0) * contrast + 128.0 + brightness, 0, 255).astype(np.uint8)
    adjusted = cv2.LUT(resized, lut)

    if rng.random() < 0.25:
        ok, encoded = cv2.imencode(".png", adjusted, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    else:
        quality = int(rng.uniform(70, 98))
        ok, encoded = cv2.imencode(".jpg", adjusted, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV failed to encode a simulated upload")
    return encoded.tobytes()


def invisible_twin(
    data: bytes, params: PreprocessingParams, rng: np.random.Generator
) -> np.ndarray:
    """The enhanced picture of `data` after a change no one can see (what training pairs)."""
    header, gray = decode_upload(data, params)
    reduced = header.format == "JPEG" and max(gray.shape) < max(header.width, header.height)
    if reduced and rng.random() < 0.5:
        full = replace(params, jpeg_reduced_min_side=1 << 30)
        return enhance_grayscale(decode_upload(data, full)[1], params)
    shifted = np.clip(gray.astype(np.int16) + int(rng.choice([-2, -1, 1, 2])), 0, 255)
    shifted = shifted.astype(np.uint8)
    if rng.random() < 0.3:
        encoded = cv2.imencode(".png", shifted, [cv2.IMWRITE_PNG_COMPRESSION, 1])[1]
    else:
        encoded = cv2.imencode(
            ".jpg", shifted, [cv2.IMWRITE_JPEG_QUALITY, int(rng.uniform(85, 97))]
        )[1]
    twin_bytes = encoded.tobytes()
    return enhance_grayscale(decode_upload(twin_bytes, params)[1], params)
