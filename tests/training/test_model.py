"""The CNN's shape: 7 conv blocks, one logit, a Grad-CAM layer fine enough to localise."""

from __future__ import annotations

import numpy as np

from training.model import BLOCK_FILTERS, INPUT_NAME, LOGIT_LAYER, block_output, build_cnn


def test_output_is_one_logit_per_image():
    model = build_cnn(150)
    out = model(np.random.default_rng(0).random((3, 150, 150, 1), dtype=np.float32))
    assert tuple(out.shape) == (3, 1)
    assert model.inputs[0].name == INPUT_NAME
    assert model.layers[-1].name == LOGIT_LAYER and model.layers[-1].activation.__name__ == "linear"


def test_seven_conv_pool_dropout_blocks():
    names = [layer.name for layer in build_cnn(150).layers]
    for block in range(1, len(BLOCK_FILTERS) + 1):
        for part in ("conv", "pool", "dropout"):
            assert f"block{block}_{part}" in names
    assert len(BLOCK_FILTERS) == 7


def test_block5_map_is_at_least_9x9():
    shape = build_cnn(150).get_layer(block_output(5)).output.shape
    assert shape[1] >= 9 and shape[2] >= 9
