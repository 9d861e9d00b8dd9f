"""The bundle loader refuses a bundle that does not match its card, in one path-free line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from engine import BundleError, ModelBundle
from engine.card import CARD_FILE


@pytest.fixture
def bundle_copy(tmp_path, shipped_bundle_dir):
    target = tmp_path / "bundle"
    shutil.copytree(shipped_bundle_dir, target)
    return target


def _edit_card(bundle_dir, edit) -> None:
    card = json.loads((bundle_dir / CARD_FILE).read_text())
    edit(card)
    (bundle_dir / CARD_FILE).write_text(json.dumps(card))


def test_the_shipped_bundle_loads_and_predicts(shipped_bundle_dir):
    bundle = ModelBundle.load(shipped_bundle_dir)
    batch = np.zeros((2, *bundle.preprocessing.input_shape), np.float32)
    probabilities = bundle.predict(batch)
    assert probabilities.shape == (2,) and np.all((probabilities >= 0) & (probabilities <= 1))


def test_card_with_another_input_shape(bundle_copy):
    _edit_card(bundle_copy, lambda c: c["input"].update(shape=[None, 224, 224, 1]))
    with pytest.raises(BundleError, match="input shape"):
        ModelBundle.load(bundle_copy)


def test_card_naming_other_outputs(bundle_copy):
    _edit_card(bundle_copy, lambda c: c["outputs"][0].update(name="score"))
    with pytest.raises(BundleError, match="outputs"):
        ModelBundle.load(bundle_copy)


def test_a_listed_file_that_is_missing(bundle_copy):
    _edit_card(bundle_copy, lambda c: c["sha256"].update({"extra.npz": "0" * 64}))
    with pytest.raises(BundleError, match=r"missing extra\.npz"):
        ModelBundle.load(bundle_copy)


def test_errors_name_files_not_server_paths(bundle_copy, tmp_path):
    for target in (tmp_path / "nowhere", bundle_copy):
        if target == bundle_copy:
            (bundle_copy / "model.onnx").write_bytes(b"not onnx")
        with pytest.raises(BundleError) as caught:
            ModelBundle.load(target)
        assert str(tmp_path) not in str(caught.value)
