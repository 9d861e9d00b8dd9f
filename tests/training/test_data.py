"""The Kaggle-layout loader: discovery, carved validation split, bad files, odd encodings."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from imaging import PreprocessingParams, preprocess_file
from training.data import carve_validation, enhance_files, list_split, load_splits
from training.train import to_unit_float

PARAMS = PreprocessingParams()


def test_class_folders_match_without_regard_to_case(small_kaggle):
    files = list_split(small_kaggle, "train")
    # NORMAL: 40 + 16-bit + RGB + broken; PNEUMONIA: 40 + DICOM
    assert files.class_counts() == {"NORMAL": 43, "PNEUMONIA": 41}
    assert not any(p.suffix == ".txt" for p in files.paths)


def test_missing_val_is_carved_stratified_and_seeded(small_kaggle, caplog):
    with caplog.at_level(logging.INFO):
        splits = load_splits(small_kaggle, val_fraction=0.25, seed=3)
    assert splits.val_carved
    assert "carved" in caplog.text
    assert splits.val.class_counts() == {"NORMAL": 11, "PNEUMONIA": 10}
    assert not set(splits.val.paths) & set(splits.train.paths)
    again = load_splits(small_kaggle, val_fraction=0.25, seed=3)
    assert again.val.paths == splits.val.paths


def test_carve_keeps_every_image_exactly_once(small_kaggle):
    files = list_split(small_kaggle, "train")
    train, val = carve_validation(files, 0.2, seed=0)
    assert sorted(train.paths + val.paths) == sorted(files.paths)


def test_unreadable_file_is_reported_by_name_and_skipped(small_kaggle, caplog):
    files = list_split(small_kaggle, "train")
    with caplog.at_level(logging.WARNING):
        result = enhance_files(files, PARAMS, workers=1)
    assert [p.name for p, _ in result.skipped] == ["broken.jpeg"]
    assert "broken.jpeg" in caplog.text
    assert len(result.labels) == len(files) - 1
    assert result.images.shape[1:] == (1, 150, 150)


def test_sixteen_bit_and_rgb_files_load_like_the_gray_original(small_kaggle):
    normal = small_kaggle / "train" / "normal"
    original = normal / "normal-000.jpeg"
    reference = preprocess_file(original, PARAMS)
    assert np.array_equal(preprocess_file(normal / "sixteen_bit.png", PARAMS), reference)
    assert np.abs(preprocess_file(normal / "colour.jpg", PARAMS) - reference).mean() < 0.08
    sick = small_kaggle / "train" / "pneumonia"
    dicom = preprocess_file(sick / "film.dcm", PARAMS)
    assert np.array_equal(dicom, preprocess_file(sick / "pneumonia-000.jpeg", PARAMS))


def test_training_tensor_equals_serving_tensor_bit_for_bit(small_kaggle, tmp_path):
    files = list_split(small_kaggle, "test")
    cached = enhance_files(files, PARAMS, cache_dir=tmp_path, workers=1)
    reloaded = enhance_files(files, PARAMS, cache_dir=tmp_path, workers=1)  # from the disk cache
    for enhanced in (cached, reloaded):
        training_side = to_unit_float(enhanced.images[:, 0], PARAMS).numpy()
        for path, tensor in zip(enhanced.paths, training_side, strict=True):
            serving_side = preprocess_file(path, PARAMS)  # what app/ runs on an upload
            assert tensor.dtype == serving_side.dtype
            assert np.array_equal(tensor, serving_side), path.name


def test_missing_data_dir_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_splits(tmp_path / "nowhere")
    (tmp_path / "train").mkdir()
    with pytest.raises(FileNotFoundError, match="no training images"):
        load_splits(tmp_path)


def test_invisible_twins_differ_by_little_and_pair_up_in_batches(small_kaggle, tmp_path):
    from training.settings import TrainSettings
    from training.train import training_dataset

    files = list_split(small_kaggle, "test")
    data = enhance_files(files, PARAMS, n_variants=3, cache_dir=tmp_path, workers=1, twins=True)
    assert data.twins is not None and data.twins.shape == data.images.shape
    diff = np.abs(data.twins.astype(int) - data.images.astype(int))
    assert 0 < diff.mean() < 4  # a different encoding of the same picture, not another picture
    again = enhance_files(files, PARAMS, n_variants=3, cache_dir=tmp_path, workers=1, twins=True)
    assert np.array_equal(again.twins, data.twins)  # cached with the images
    settings = TrainSettings(batch_size=8, consistency=1.0, rotation_degrees=0, zoom=0, shift=0)
    x, y, _ = next(iter(training_dataset(data, PARAMS, settings, seed=0)))
    assert x.shape == (8, 150, 150, 1) and np.array_equal(y[0::2], y[1::2])
    x = np.asarray(x)
    pair_gap = np.abs(x[0::2] - x[1::2]).mean()
    stranger_gap = np.abs(x[0::2] - np.roll(x[1::2], 1, axis=0)).mean()
    assert pair_gap < stranger_gap / 3
