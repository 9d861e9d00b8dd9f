"""Grad-CAM depends on the trained weights (the random-weights sanity check), and its grid
covers the whole image at the card's resolution."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.heatmaps import random_weights_control
from engine import ModelBundle
from engine.gradcam import GradCam
from imaging import preprocess_file


@pytest.mark.devdata
def test_heatmap_changes_when_the_weights_are_random(shipped_bundle_dir, sample_files):
    bundle = ModelBundle.load(shipped_bundle_dir)
    params = bundle.preprocessing
    trained_cam = GradCam(bundle.keras_model(), bundle.card.gradcam, params.image_size)
    random_cam = random_weights_control(bundle)
    correlations = []
    for path in sample_files:
        tensor = preprocess_file(path, params)
        trained = trained_cam(tensor)
        randomised = random_cam(tensor)
        assert trained.shape == bundle.card.gradcam.grid
        assert trained.min() >= 0.0 and trained.max() <= 1.0 + 1e-6
        if trained.std() > 0 and randomised.std() > 0:
            correlations.append(np.corrcoef(trained.ravel(), randomised.ravel())[0, 1])
    assert correlations and np.mean(correlations) < 0.5
