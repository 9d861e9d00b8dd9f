"""The served graph: one or more trained member networks folded into a single Keras model.

    image -> member k (layers renamed m{k}_...) -> logit_k
          -> mean over members -> calibration (slope * z + bias) -> sigmoid -> "probability"
          -> per-block global-average-pooled feature maps of every member -> "ood_features"

This graph is saved as model.keras (Grad-CAM reads its member layers) and converted to ONNX, so the
calibration lives in exactly one place, inside the graph, and ONNX and Keras give the same numbers.
The pooled features cost nothing extra: the out-of-distribution guard reads them beside the
probability in the same ONNX call.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import layers

from engine.card import GradCamMember, GradCamSpec
from training.model import (
    BLOCK_FILTERS,
    INPUT_NAME,
    LOGIT_LAYER,
    POOLED_LAYER,
    block_output,
)

PROBABILITY_OUTPUT = "probability"
FEATURES_OUTPUT = "ood_features"
CALIBRATION_LAYER = "calibration"
FEATURE_BLOCKS = tuple(range(1, len(BLOCK_FILTERS) + 1))
GRADCAM_METHOD = "hirescam"
GRADCAM_CHOICE = (
    "HiResCAM on blocks 4 (19x19) and 5 (10x10), maps multiplied: on the validation pneumonia "
    "films of ensemble 2026.12.03-f532fc6a, its peak lay on the outer ring of a 10x10 grid for "
    "0.0% of them with a median 0.920 of the map in the thorax box, against 8.7% and 0.779 for "
    "Grad-CAM on the same blocks and 4.7% and 0.701 for Grad-CAM on block 4 alone "
    "(benchmarks/gradcam_layers.py)"
)


@dataclass(frozen=True)
class ServingGraph:
    model: keras.Model
    gradcam: GradCamSpec
    feature_slices: tuple[tuple[str, int, int], ...]  # (member/block name, start, stop)


def _prefixed(k: int, name: str) -> str:
    return f"m{k}_{name}"


def _unfold_member(member: keras.Model, image: keras.KerasTensor, k: int):
    """Re-apply a chain-shaped member's layers to `image` under new names; weights are copied."""
    x = image
    outputs: dict[str, keras.KerasTensor] = {}
    for layer in member.layers[1:]:
        config = {**layer.get_config(), "name": _prefixed(k, layer.name)}
        clone = layer.__class__.from_config(config)
        x = clone(x)
        clone.set_weights(layer.get_weights())
        outputs[layer.name] = x
    return outputs


def build_serving_graph(
    members: list[keras.Model],
    slope: float = 1.0,
    bias: float = 0.0,
    gradcam_blocks: tuple[int, ...] = (4, 5),
) -> ServingGraph:
    """Fold trained members (image -> logit) into the served graph; Grad-CAM reads (and
    multiplies) the maps of `gradcam_blocks`."""
    image_size = members[0].inputs[0].shape[1]
    image = keras.Input(shape=(image_size, image_size, 1), name=INPUT_NAME)
    logits, features, slices, start = [], [], [], 0
    gradcam_members = []
    for k, member in enumerate(members):
        out = _unfold_member(member, image, k)
        logits.append(out[LOGIT_LAYER])
        for block in FEATURE_BLOCKS:
            pooled = layers.GlobalAveragePooling2D(name=_prefixed(k, f"block{block}_features"))(
                out[block_output(block)]
            )
            features.append(pooled)
            width = BLOCK_FILTERS[block - 1]
            slices.append((_prefixed(k, f"block{block}"), start, start + width))
            start += width
        gradcam_members.append(
            GradCamMember(
                feature_layers=tuple(_prefixed(k, block_output(b)) for b in gradcam_blocks),
                pooled_layer=_prefixed(k, POOLED_LAYER),
                dense_layer=_prefixed(k, LOGIT_LAYER),
            )
        )
    mean_logit = layers.Average(name="mean_logit")(logits) if len(logits) > 1 else logits[0]
    calibration = layers.Dense(1, name=CALIBRATION_LAYER, trainable=False)
    calibrated = calibration(mean_logit)
    calibration.set_weights([np.array([[slope]], np.float32), np.array([bias], np.float32)])
    probability = layers.Activation("sigmoid", name=PROBABILITY_OUTPUT)(calibrated)
    pooled_all = layers.Concatenate(name=FEATURES_OUTPUT)(features)
    model = keras.Model(image, [probability, pooled_all], name="cxr_pneumonia_served")
    grids = [model.get_layer(name).output.shape[1:3] for name in gradcam_members[0].feature_layers]
    finest = max(grids, key=lambda shape: shape[0])
    spec = GradCamSpec(
        members=tuple(gradcam_members),
        grid=(int(finest[0]), int(finest[1])),
        chosen_because=GRADCAM_CHOICE if tuple(gradcam_blocks) == (4, 5) else "",
        method=GRADCAM_METHOD,
    )
    return ServingGraph(model, spec, tuple(slices))


def mean_logit_model(graph: ServingGraph) -> keras.Model:
    """The served graph's uncalibrated mean logit (what calibration is fitted on)."""
    model = graph.model
    name = "mean_logit" if len(graph.gradcam.members) > 1 else graph.gradcam.members[0].dense_layer
    return keras.Model(model.inputs, model.get_layer(name).output)
