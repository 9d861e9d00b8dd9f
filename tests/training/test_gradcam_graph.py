"""The ONNX Grad-CAM graph: its hand-written backward pass equals TensorFlow's gradients, its maps
equal the reference Grad-CAM's, and export refuses to record a graph that disagrees."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import tensorflow as tf

from engine import ModelBundle, ModelCard, Predictor
from engine.gradcam import GradCam
from imaging import preprocess_bytes
from tests.images import png_bytes, synthetic_film
from training import gradcam_graph
from training.__main__ import main as training_main
from training.export import ExportError
from training.gradcam_graph import (
    GRADCAM_MIN_CORRELATION,
    _pool_backward,
    add_gradcam_graph,
    resize_matrix,
)


@pytest.mark.parametrize("size", [(5, 5), (6, 4), (19, 19)])
def test_pool_backward_routes_each_window_to_its_first_maximum(size):
    """Against TensorFlow's MaxPoolGrad on 'same' pooling, with ties (zeros and flat regions)."""
    rng = np.random.default_rng(sum(size))
    values = rng.integers(0, 3, (1, *size, 4)).astype(np.float32)  # many equal values
    activation = tf.constant(values)
    pooled_shape = (1, (size[0] + 1) // 2, (size[1] + 1) // 2, 4)
    weights = tf.constant(rng.normal(size=pooled_shape), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(activation)
        pooled = tf.nn.max_pool2d(activation, 2, 2, "SAME")
        score = tf.reduce_sum(pooled * weights)
    expected = tape.gradient(score, activation).numpy()
    got = _pool_backward(activation, pooled, weights).numpy()
    np.testing.assert_array_equal(got, expected)


def test_resize_matrix_is_tensorflows_bilinear_resize():
    image = np.random.default_rng(0).random((10, 7), dtype=np.float32)
    expected = tf.image.resize(image[None, ..., None], (19, 12), method="bilinear")[0, ..., 0]
    got = resize_matrix(10, 19) @ image @ resize_matrix(7, 12).T
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-6)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def _films(params, count=6):
    return [
        preprocess_bytes(png_bytes(synthetic_film(seed, pneumonia=seed % 2 == 0)), params)
        for seed in range(count)
    ]


@pytest.mark.slow
def test_the_graph_gives_the_served_answer_and_tensorflows_map(synthetic_bundle):
    bundle = ModelBundle.load(synthetic_bundle)
    spec = bundle.card.gradcam
    assert spec.graph == "gradcam.onnx" and spec.parity.images >= 8
    reference = GradCam(bundle.keras_model(), spec, bundle.preprocessing.image_size)
    for tensor in _films(bundle.preprocessing):
        outputs = bundle.run_gradcam(tensor)
        served = bundle.run(tensor[None])
        np.testing.assert_allclose(outputs["probability"], served["probability"], atol=1e-6)
        np.testing.assert_allclose(outputs["ood_features"], served["ood_features"], rtol=1e-4)
        assert outputs["gradcam"].shape == spec.grid
        expected = reference(tensor)
        assert _correlation(outputs["gradcam"], expected) >= GRADCAM_MIN_CORRELATION


@pytest.mark.slow
def test_both_backends_answer_alike(synthetic_bundle):
    data = png_bytes(synthetic_film(3, pneumonia=True))
    graph = Predictor.from_directory(synthetic_bundle, ood_guard=False).predict(data)
    keras = Predictor.from_directory(
        synthetic_bundle, ood_guard=False, gradcam_backend="keras"
    ).predict(data)
    assert abs(graph.probability - keras.probability) <= 1e-6
    assert _correlation(graph.heatmap.grid, keras.heatmap.grid) >= GRADCAM_MIN_CORRELATION
    assert "gradcam" in keras.timings_ms and "gradcam" not in graph.timings_ms


@pytest.fixture
def bundle_without_graph(synthetic_bundle, tmp_path):
    target = tmp_path / "bundle"
    shutil.copytree(synthetic_bundle, target)
    card = json.loads((target / "model_card.json").read_text())
    for key in ("graph", "graph_output", "parity"):
        card["gradcam"].pop(key)
    card["sha256"].pop("gradcam.onnx")
    (target / "model_card.json").write_text(json.dumps(card))
    (target / "gradcam.onnx").unlink()
    return target


@pytest.mark.slow
def test_a_graph_that_disagrees_is_not_recorded(bundle_without_graph, monkeypatch):
    before = json.loads((bundle_without_graph / "model_card.json").read_text())
    bundle = ModelBundle.load(bundle_without_graph)
    monkeypatch.setattr(gradcam_graph, "GRADCAM_MIN_CORRELATION", 1.5)
    with pytest.raises(ExportError, match="disagrees"):
        add_gradcam_graph(
            bundle.keras_model(), bundle_without_graph, np.stack(_films(bundle.preprocessing, 8))
        )
    assert json.loads((bundle_without_graph / "model_card.json").read_text()) == before
    assert not (bundle_without_graph / "gradcam.onnx").exists()
    assert Predictor(ModelBundle.load(bundle_without_graph)).gradcam_in_graph is False


@pytest.mark.slow
def test_the_command_gives_an_older_bundle_its_graph(bundle_without_graph, small_kaggle, capsys):
    training_main(
        ["gradcam-graph", "--model", str(bundle_without_graph), "--films", str(small_kaggle)]
    )
    assert "gradcam.onnx written" in capsys.readouterr().out
    card = ModelCard.read(bundle_without_graph)
    assert card.gradcam.graph == "gradcam.onnx"
    assert card.gradcam.parity.min_correlation >= GRADCAM_MIN_CORRELATION
    assert Predictor(ModelBundle.load(bundle_without_graph)).gradcam_in_graph


@pytest.mark.slow
def test_both_map_methods_convert_exactly(bundle_without_graph):
    """HiResCAM (new bundles) and Grad-CAM (older cards) each give the reference's map."""
    card = json.loads((bundle_without_graph / "model_card.json").read_text())
    assert card["gradcam"]["method"] == "hirescam"
    card["gradcam"]["method"] = "gradcam"
    (bundle_without_graph / "model_card.json").write_text(json.dumps(card))
    bundle = ModelBundle.load(bundle_without_graph)
    films = _films(bundle.preprocessing, 8)
    checked = add_gradcam_graph(bundle.keras_model(), bundle_without_graph, np.stack(films))
    assert checked.min_correlation >= GRADCAM_MIN_CORRELATION
    bundle = ModelBundle.load(bundle_without_graph)
    spec = bundle.card.gradcam
    hires = GradCam(
        bundle.keras_model(),
        spec.model_copy(update={"method": "hirescam"}),
        bundle.preprocessing.image_size,
    )
    maps = [bundle.run_gradcam(t)["gradcam"] for t in films]
    assert any(np.abs(m - hires(t)).max() > 0.05 for m, t in zip(maps, films, strict=True))
