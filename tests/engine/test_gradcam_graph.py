"""Serving heatmaps from the bundle's Grad-CAM graph: no TensorFlow in the process, the same
answer as the Keras reference, the graph's file checked like the others."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from engine import BundleError, ModelBundle, Predictor
from engine.card import CARD_FILE
from tests.images import png_bytes, synthetic_film


def test_a_heatmap_is_served_without_importing_tensorflow(shipped_bundle_dir, tmp_path):
    film = tmp_path / "film.png"
    film.write_bytes(png_bytes(synthetic_film(0, pneumonia=True)))
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from engine import Predictor
        predictor = Predictor.from_directory({str(shipped_bundle_dir)!r})
        answer = predictor.predict(Path({str(film)!r}).read_bytes(), heatmap=True)
        assert answer.heatmap is not None and answer.heatmap.grid.shape == (19, 19)
        print("tensorflow" in sys.modules, "keras" in sys.modules)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True
    )
    assert result.stdout.split() == ["False", "False"]


def test_the_shipped_graph_matches_the_keras_reference(shipped_bundle_dir):
    data = png_bytes(synthetic_film(1, pneumonia=True))
    graph = Predictor.from_directory(shipped_bundle_dir, ood_guard=False)
    keras = Predictor.from_directory(shipped_bundle_dir, ood_guard=False, gradcam_backend="keras")
    assert graph.gradcam_in_graph and not keras.gradcam_in_graph
    a, b = graph.predict(data), keras.predict(data)
    assert abs(a.probability - b.probability) <= 1e-6
    # Equal to float rounding, except where a max-pool tie routes the gradient elsewhere
    # (training/gradcam_graph.py).
    assert np.corrcoef(a.heatmap.grid.ravel(), b.heatmap.grid.ravel())[0, 1] >= 0.99


def test_a_prediction_alone_uses_every_core_and_concurrent_ones_one_each(shipped_bundle_dir):
    predictor = Predictor.from_directory(shipped_bundle_dir, onnx_threads_alone=2)
    predictor._running = 1
    assert predictor._onnx_threads() == 2
    predictor._running = 2
    assert predictor._onnx_threads() is None  # the bundle's own thread count (ONNX_THREADS)
    tensor = np.random.default_rng(0).random((1, 150, 150, 1), dtype=np.float32)
    one, two = predictor.bundle.run(tensor), predictor.bundle.run(tensor, threads=2)
    np.testing.assert_allclose(one["probability"], two["probability"], atol=1e-6)


@pytest.fixture
def bundle_copy(tmp_path, shipped_bundle_dir):
    target = tmp_path / "bundle"
    shutil.copytree(shipped_bundle_dir, target)
    return target


def test_a_changed_graph_file_is_refused(bundle_copy):
    (bundle_copy / "gradcam.onnx").write_bytes(b"not the graph")
    with pytest.raises(BundleError, match=r"gradcam\.onnx does not match"):
        ModelBundle.load(bundle_copy)


def test_a_graph_named_but_missing_is_refused(bundle_copy):
    (bundle_copy / "gradcam.onnx").unlink()
    with pytest.raises(BundleError, match=r"missing gradcam\.onnx"):
        ModelBundle.load(bundle_copy)


def test_a_card_without_a_graph_falls_back_to_keras(bundle_copy):
    card = json.loads((bundle_copy / CARD_FILE).read_text())
    card["gradcam"] = {k: card["gradcam"][k] for k in ("members", "grid", "chosen_because")}
    (bundle_copy / CARD_FILE).write_text(json.dumps(card))
    predictor = Predictor(ModelBundle.load(bundle_copy))
    assert predictor.gradcam is not None and not predictor.gradcam_in_graph


def test_a_prediction_alone_shrinks_its_film_beside_and_draws_the_same_overlay(
    shipped_bundle_dir, monkeypatch
):
    """Alone, the overlay's film is shrunk in the film thread while the networks' input is
    resized; under load, in line. The overlay is the same pixel for pixel."""
    import threading

    from engine import predictor as module

    data = png_bytes(synthetic_film(2, 700, 900, pneumonia=True))
    predictor = Predictor.from_directory(shipped_bundle_dir, ood_guard=False)
    threads = []
    original = module.shrink

    def recording(*args):
        threads.append(threading.current_thread().name)
        return original(*args)

    monkeypatch.setattr(module, "shrink", recording)
    alone = predictor.predict(data, heatmap=True)
    assert threads and threads[-1].startswith("film")
    predictor._running = 1  # another prediction is running: predict() makes it 2
    busy = predictor.predict(data, heatmap=True)
    assert threads[-1] == threading.current_thread().name
    assert np.array_equal(alone.heatmap.overlay, busy.heatmap.overlay)
    assert alone.probability == busy.probability
