"""Format detection, limits and decoding of the inputs X-rays arrive as."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from imaging import (
    CorruptImageError,
    ImageTooLargeError,
    UnsupportedImageError,
    decode_grayscale,
    probe_image,
)
from tests.images import encode


def gradient(h: int = 64, w: int = 48) -> np.ndarray:
    return np.tile(np.linspace(0, 255, w, dtype=np.uint8), (h, 1))


def test_probe_reads_format_and_size_from_bytes():
    header = probe_image(encode(gradient(64, 48), "PNG"))
    assert (header.format, header.width, header.height) == ("PNG", 48, 64)


@pytest.mark.parametrize(
    "data",
    [
        b"hello world, not an image",
        b"<html><body>x</body></html>",
        b"%PDF-1.4\n%...",
        b"\x00" * 100,
    ],
)
def test_non_images_are_unsupported(data):
    with pytest.raises(UnsupportedImageError):
        probe_image(data)


def test_gif_is_a_known_but_unsupported_format():
    with pytest.raises(UnsupportedImageError, match="GIF"):
        probe_image(encode(gradient(), "GIF"))


def test_empty_upload_is_corrupt():
    with pytest.raises(CorruptImageError, match="empty"):
        probe_image(b"")


def test_pixel_limit_is_checked_from_the_header():
    data = encode(gradient(100, 100), "PNG")
    with pytest.raises(ImageTooLargeError, match="10000 pixels"):
        probe_image(data, max_pixels=9_999)
    assert probe_image(data, max_pixels=10_000).pixels == 10_000


def test_truncated_jpeg_is_corrupt():
    data = encode(gradient(256, 256), "JPEG", quality=90)
    truncated = data[: len(data) // 3]
    with pytest.raises(CorruptImageError):
        decode_grayscale(truncated, probe_image(truncated))


def test_sixteen_bit_png_is_scaled_not_clipped():
    wide = (np.linspace(0, 65535, 64).astype(np.uint16))[np.newaxis].repeat(64, axis=0)
    ok, png = cv2.imencode(".png", wide)
    assert ok
    gray = decode_grayscale(png.tobytes(), probe_image(png.tobytes()))
    assert gray.dtype == np.uint8
    assert gray[0, 0] == 0 and gray[0, -1] == 255
    assert 120 <= gray[0, 32] <= 135  # mid-scale stays mid-scale


def test_rgb_and_rgba_become_grayscale():
    rgb = np.stack([gradient()] * 3, axis=-1)
    rgba = np.concatenate([rgb, np.full((*rgb.shape[:2], 1), 255, np.uint8)], axis=-1)
    for array in (rgb, rgba):
        data = encode(array, "PNG")
        gray = decode_grayscale(data, probe_image(data))
        assert gray.shape == rgb.shape[:2]
        assert np.abs(gray.astype(int) - gradient().astype(int)).max() <= 1


def test_large_jpeg_decodes_at_reduced_scale_but_keeps_enough_pixels():
    data = encode(np.tile(gradient(2400, 2000), (1, 1)), "JPEG", quality=90)
    gray = decode_grayscale(data, probe_image(data), min_side=300)
    assert min(gray.shape) >= 300
    assert gray.shape == (2400 // 4, 2000 // 4)


def test_exif_orientation_is_applied_before_the_chain():
    from imaging import PreprocessingParams, preprocess_bytes
    from tests.images import exif_rotated_jpeg, jpeg_bytes, synthetic_film

    film = synthetic_film(5, 320, 256)
    params = PreprocessingParams()
    upright = preprocess_bytes(jpeg_bytes(film, 90), params)
    rotated = preprocess_bytes(exif_rotated_jpeg(film), params)
    turned = preprocess_bytes(jpeg_bytes(np.rot90(film).copy(), 90), params)
    assert np.abs(rotated - upright).mean() < 0.02
    assert np.abs(turned - upright).mean() > 5 * np.abs(rotated - upright).mean()


def test_colourfulness_tells_a_gray_film_stored_as_rgb_from_a_colour_photo():
    from imaging import colourfulness
    from tests.images import jpeg_bytes, png_bytes, synthetic_film

    film = synthetic_film(4, 300, 260)
    as_rgb = np.stack([film] * 3, axis=-1)
    for data in (png_bytes(film), jpeg_bytes(as_rgb), png_bytes(as_rgb)):
        assert colourfulness(data, probe_image(data)) < 1.0
    tinted = as_rgb.copy()
    tinted[..., 0] = np.clip(tinted[..., 0].astype(int) + 60, 0, 255)
    photo = jpeg_bytes(tinted)
    assert colourfulness(photo, probe_image(photo)) > 20  # a red tint; photos score 30-130
