"""Grad-CAM depends on the trained weights (the random-weights sanity check)."""

from __future__ import annotations

import numpy as np
import pytest

from engine import ModelBundle
from engine.gradcam import GradCam
from engine.runtime import import_keras
from imaging import preprocess_file
from training.model import build_cnn


@pytest.mark.devdata
def test_heatmap_changes_when_the_weights_are_random(shipped_bundle_dir, sample_files):
    keras = import_keras()
    bundle = ModelBundle.load(shipped_bundle_dir)
    params = bundle.preprocessing
    trained_cam = GradCam(bundle.keras_model(), bundle.card.gradcam, params.image_size)
    keras.utils.set_random_seed(0)
    random_cam = GradCam(build_cnn(params.image_size), bundle.card.gradcam, params.image_size)
    correlations = []
    for path in sample_files:
        tensor = preprocess_file(path, params)
        trained = trained_cam(tensor).ravel()
        randomised = random_cam(tensor).ravel()
        assert trained.shape == (np.prod(bundle.card.gradcam.grid),)
        assert trained.min() >= 0.0 and trained.max() <= 1.0 + 1e-6
        if trained.std() > 0 and randomised.std() > 0:
            correlations.append(np.corrcoef(trained, randomised)[0, 1])
    assert correlations and np.mean(correlations) < 0.5
