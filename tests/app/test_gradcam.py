"""Grad-CAM depends on the trained weights and points inside the chest."""

from __future__ import annotations

import keras
import numpy as np

from app.gradcam import GradCam
from imaging import preprocess_file
from training.model import GRADCAM_LAYER, build_cnn


def test_heatmap_changes_when_the_weights_are_random(client, sample_files):
    predictor = client.app.state.service.predictor
    params = predictor.bundle.preprocessing
    keras.utils.set_random_seed(0)
    random_cam = GradCam(build_cnn(params.image_size), GRADCAM_LAYER, params.image_size)
    correlations = []
    for path in sample_files:
        tensor = preprocess_file(path, params)
        trained = predictor.gradcam(tensor).ravel()
        randomised = random_cam(tensor).ravel()
        assert trained.shape == (10 * 10,)
        assert trained.min() >= 0.0 and trained.max() <= 1.0 + 1e-6
        if trained.std() > 0 and randomised.std() > 0:
            correlations.append(np.corrcoef(trained, randomised)[0, 1])
    assert correlations and np.mean(correlations) < 0.5
