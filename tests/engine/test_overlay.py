"""The heatmap overlay and its PNG: the right size, the map visible, the encoding lossless."""

from __future__ import annotations

import cv2
import numpy as np

from engine.overlay import encode_png, render_overlay, shrink


def test_png_is_lossless_for_gray_and_colour():
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (97, 131), dtype=np.uint8)
    colour = rng.integers(0, 256, (97, 131, 3), dtype=np.uint8)
    for image, flags in ((gray, cv2.IMREAD_GRAYSCALE), (colour, cv2.IMREAD_COLOR)):
        data = encode_png(image)
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert np.array_equal(cv2.imdecode(np.frombuffer(data, np.uint8), flags), image)


def test_overlay_keeps_the_film_size_and_is_hottest_where_the_map_is():
    film = shrink(np.full((1060, 1414), 128, np.uint8), 512)
    assert film.shape == (384, 512)
    cam = np.zeros((10, 10), np.float32)
    cam[2, 7] = 1.0
    overlay = render_overlay(film, cam)
    assert overlay.shape == (384, 512, 3)
    red = overlay[..., 2].astype(int) - overlay[..., 0].astype(int)
    row, col = np.unravel_index(int(np.argmax(red)), red.shape)
    assert abs(row / 384 - 0.25) < 0.1 and abs(col / 512 - 0.75) < 0.1


def test_pictures_in_each_format_decode_to_the_same_size():
    import pytest

    from engine.overlay import PICTURE_FORMATS, encode_picture

    film = shrink(np.full((300, 400), 100, np.uint8), 512)
    overlay = render_overlay(film, np.eye(8, dtype=np.float32))
    for picture_format in PICTURE_FORMATS:
        data = encode_picture(overlay, picture_format)
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert decoded.shape == overlay.shape, picture_format
        assert np.abs(decoded.astype(int) - overlay.astype(int)).mean() < 4, picture_format
    with pytest.raises(ValueError, match="unknown picture format"):
        encode_picture(overlay, "gif")
