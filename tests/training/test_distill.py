"""Distillation: a teacher bundle's view-averaged answers as targets; a student trained on them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine import ModelBundle
from imaging import PreprocessingParams
from training.data import enhance_files, list_split
from training.distill import TeacherError, teacher_targets, view_averaged_targets

PARAMS = PreprocessingParams()


def test_view_averaging_is_on_the_logit_scale():
    probabilities = np.array([[0.5, 0.5, 0.5], [0.9, 0.5, 0.1], [0.99, 0.9, 0.5]])
    targets = view_averaged_targets(probabilities)
    assert targets[0] == pytest.approx(0.5) and targets[1] == pytest.approx(0.5)
    mean_logit = np.mean(np.log(probabilities[2] / (1 - probabilities[2])))
    assert targets[2] == pytest.approx(1 / (1 + np.exp(-mean_logit)), rel=1e-6)
    assert np.isfinite(view_averaged_targets(np.array([[0.0, 1.0, 1.0]]))).all()


def test_training_batches_carry_the_teacher_targets_and_the_label_weights(small_kaggle, tmp_path):
    from training.settings import TrainSettings
    from training.train import class_weights, training_dataset

    data = enhance_files(list_split(small_kaggle, "test"), PARAMS, n_variants=2, cache_dir=tmp_path)
    targets = np.linspace(0.05, 0.95, len(data.labels)).astype(np.float32)
    settings = TrainSettings(batch_size=len(data.labels), rotation_degrees=0, zoom=0, shift=0)
    batch = next(iter(training_dataset(data, PARAMS, settings, 0, targets)))
    x, y, w = (np.asarray(t) for t in batch)
    assert x.shape == (len(data.labels), 150, 150, 1)
    assert sorted(y.tolist()) == pytest.approx(sorted(targets.tolist()))
    weight_of = class_weights(data.labels)
    pairs = zip(targets, data.labels, strict=True)
    by_target = {round(float(t), 5): weight_of[int(c)] for t, c in pairs}
    assert [by_target[round(float(t), 5)] for t in y] == pytest.approx(w.tolist())


@pytest.mark.slow
def test_targets_are_the_teachers_served_answers_averaged_over_views(
    synthetic_bundle, small_kaggle, tmp_path
):
    data = enhance_files(list_split(small_kaggle, "test"), PARAMS, n_variants=3, cache_dir=tmp_path)
    targets, teacher = teacher_targets(synthetic_bundle, data, PARAMS)
    bundle = ModelBundle.load(synthetic_bundle)
    views = (data.images[0].astype(np.float32) * np.float32(PARAMS.scale))[..., np.newaxis]
    served = bundle.predict(views)  # the three views of the first film, as the service scores them
    assert targets.shape == (len(data.labels),)
    expected = float(view_averaged_targets(served[np.newaxis])[0])
    assert targets[0] == pytest.approx(expected, abs=1e-5)
    assert teacher.version == bundle.version and teacher.members == 2
    with pytest.raises(TeacherError, match="another preprocessing chain"):
        teacher_targets(synthetic_bundle, data, PreprocessingParams(clahe_tile_grid=4))


@pytest.mark.slow
def test_a_student_distilled_from_a_bundle_records_its_teacher(
    synthetic_bundle, small_kaggle, tmp_path
):
    from training.settings import TrainSettings
    from training.train import train

    settings = TrainSettings(  # the synthetic bundle's own settings, one member
        epochs=6,
        batch_size=10,
        val_fraction=0.35,
        members=1,
        seed=42,
        teacher=str(synthetic_bundle),
    )
    out = train(small_kaggle, tmp_path / "student", settings, run_dir=tmp_path / "run")
    card = json.loads((out / "model_card.json").read_text())
    teacher = card["training"]["distilled_from"]
    assert teacher["version"] == ModelBundle.load(synthetic_bundle).version
    assert teacher["members"] == 2 and len(card["gradcam"]["members"]) == 1
    log = (out / "training_log.csv").read_text().splitlines()
    header, first = log[0].split(","), log[1].split(",")
    accuracy = float(first[header.index("accuracy")])
    assert 0.0 < accuracy <= 1.0  # measured against the rounded targets, not the soft ones
