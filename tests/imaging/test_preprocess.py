"""The preprocessing chain: shape, dtype, range, determinism, resolution independence."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from imaging import PreprocessingParams, preprocess_bytes, preprocess_file
from tests.images import jpeg_bytes, png_bytes, synthetic_film

PARAMS = PreprocessingParams()
FILMS = [
    png_bytes(synthetic_film(0)),
    jpeg_bytes(synthetic_film(1, 1800, 1500, pneumonia=True)),
    jpeg_bytes(np.stack([synthetic_film(2, 600, 500)] * 3, axis=-1)),  # RGB
]


def test_output_shape_dtype_and_range():
    for data in FILMS:
        tensor = preprocess_bytes(data, PARAMS)
        assert tensor.shape == (150, 150, 1)
        assert tensor.dtype == np.float32
        assert tensor.min() >= 0.0 and tensor.max() <= 1.0
        assert tensor.std() > 0.05  # CLAHE leaves a picture, not a flat field


def test_chain_is_deterministic():
    assert np.array_equal(preprocess_bytes(FILMS[1], PARAMS), preprocess_bytes(FILMS[1], PARAMS))


def test_values_are_multiples_of_the_scale():
    levels = preprocess_bytes(FILMS[0], PARAMS) / np.float32(PARAMS.scale)
    assert np.allclose(levels, np.round(levels), atol=1e-3)


def test_a_file_on_disk_goes_through_the_upload_path(tmp_path):
    path = tmp_path / "film.jpg"
    path.write_bytes(FILMS[1])
    assert np.array_equal(preprocess_file(path, PARAMS), preprocess_bytes(FILMS[1], PARAMS))


def test_params_round_trip_through_the_card_dict():
    assert PreprocessingParams.from_dict(PARAMS.to_dict()) == PARAMS
    with pytest.raises(ValueError, match="unknown"):
        PreprocessingParams.from_dict({**PARAMS.to_dict(), "sharpen": True})


def _same_picture_at_1500px(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    gray = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    big = cv2.resize(gray, (1500, 1500), interpolation=cv2.INTER_CUBIC)
    ok, big_jpeg = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return preprocess_bytes(data, PARAMS), preprocess_bytes(big_jpeg.tobytes(), PARAMS)


def test_same_picture_at_another_resolution_gives_nearly_the_same_tensor():
    small, large = _same_picture_at_1500px(jpeg_bytes(synthetic_film(3, 299, 299), 95))
    assert np.mean(np.abs(small - large)) < 0.03


@pytest.mark.devdata
def test_a_real_film_at_another_resolution_gives_nearly_the_same_tensor(kaggle_dir):
    path = next((kaggle_dir / "test" / "PNEUMONIA").glob("*"))
    small, large = _same_picture_at_1500px(path.read_bytes())
    assert np.mean(np.abs(small - large)) < 0.03
