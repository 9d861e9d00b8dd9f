"""The served graph: members folded into one model, calibration applied once, features beside."""

from __future__ import annotations

import numpy as np

from engine.runtime import import_keras
from training.calibration import sigmoid
from training.model import BLOCK_FILTERS, build_cnn
from training.serving import build_serving_graph, mean_logit_model

keras = import_keras()


def _members(n: int) -> list:
    keras.utils.set_random_seed(3)
    return [build_cnn(150) for _ in range(n)]


def test_probability_is_calibrated_mean_logit_of_the_members():
    members = _members(2)
    graph = build_serving_graph(members, slope=0.7, bias=-0.4)
    x = np.random.default_rng(1).random((5, 150, 150, 1), dtype=np.float32)
    probability, features = graph.model(x, training=False)
    mean_logit = np.mean([m(x, training=False).numpy() for m in members], axis=0)
    assert np.allclose(probability.numpy(), sigmoid(0.7 * mean_logit - 0.4), atol=1e-6)
    assert np.allclose(mean_logit_model(graph)([x]).numpy(), mean_logit, atol=1e-6)
    assert features.shape == (5, 2 * sum(BLOCK_FILTERS))
    assert graph.feature_slices[-1][2] == features.shape[1]


def test_gradcam_spec_names_layers_of_the_graph():
    graph = build_serving_graph(_members(2), gradcam_blocks=(4, 5))
    names = {layer.name for layer in graph.model.layers}
    for member in graph.gradcam.members:
        assert {*member.feature_layers, member.pooled_layer, member.dense_layer} <= names
    assert graph.gradcam.grid == (19, 19)  # the finer of the two
    assert build_serving_graph(_members(1), gradcam_blocks=(5,)).gradcam.grid == (10, 10)


def test_a_single_member_needs_no_average():
    graph = build_serving_graph(_members(1), slope=1.0, bias=0.0)
    assert "mean_logit" not in {layer.name for layer in graph.model.layers}
