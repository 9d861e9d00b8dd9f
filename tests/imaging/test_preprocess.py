"""The preprocessing chain: shape, dtype, range, determinism, resolution independence."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from imaging import PreprocessingParams, preprocess_bytes, preprocess_file

PARAMS = PreprocessingParams()


def test_output_shape_dtype_and_range(sample_files):
    for path in sample_files:
        tensor = preprocess_file(path, PARAMS)
        assert tensor.shape == (150, 150, 1)
        assert tensor.dtype == np.float32
        assert tensor.min() >= 0.0 and tensor.max() <= 1.0
        assert tensor.std() > 0.05  # CLAHE leaves a real picture, not a flat field


def test_chain_is_deterministic(sample_files):
    data = sample_files[0].read_bytes()
    assert np.array_equal(preprocess_bytes(data, PARAMS), preprocess_bytes(data, PARAMS))


def test_values_are_multiples_of_the_scale(sample_files):
    tensor = preprocess_file(sample_files[0], PARAMS)
    levels = tensor / np.float32(PARAMS.scale)
    assert np.allclose(levels, np.round(levels), atol=1e-3)


def test_params_round_trip_through_the_card_dict():
    assert PreprocessingParams.from_dict(PARAMS.to_dict()) == PARAMS
    with pytest.raises(ValueError, match="unknown"):
        PreprocessingParams.from_dict({**PARAMS.to_dict(), "sharpen": True})


def test_same_picture_at_another_resolution_gives_nearly_the_same_tensor(kaggle_dir):
    path = next((kaggle_dir / "test" / "PNEUMONIA").glob("*"))
    data = path.read_bytes()
    gray = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    big = cv2.resize(gray, (1500, 1500), interpolation=cv2.INTER_CUBIC)
    ok, big_jpeg = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    small, large = preprocess_bytes(data, PARAMS), preprocess_bytes(big_jpeg.tobytes(), PARAMS)
    assert np.mean(np.abs(small - large)) < 0.03
