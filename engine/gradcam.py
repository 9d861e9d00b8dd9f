"""Grad-CAM: from the bundle's ONNX Grad-CAM graph (served), or from the retained Keras model
compiled once as a tf.function (the reference the graph is checked against at export, and the
fallback for bundles without the graph or with GRADCAM_BACKEND=keras).

The score is the logit (the sigmoid's input), not the probability: at probabilities near 0/1 the
sigmoid's gradient vanishes and the map would be noise. With several member networks (an
ensemble) the score is their mean logit, and a layer's map is the sum of the members' maps. With
several layers (blocks 4 and 5 of the shipped model), each layer's map is scaled to [0, 1],
upsampled to the finest grid and the maps are multiplied: the coarse map says where, the finer one
sharpens it, and a peak must be in both (it keeps the heat off the film's edge). The card's
`method` says how a layer's map is made: Grad-CAM weights each channel by its mean gradient;
HiResCAM multiplies gradient and activation at every position before summing the channels, so
the map is each position's first-order share of the score rather than a channel's average
importance painted wherever that channel fires (Draelos and Carin 2020). The map always
explains the positive label's score, whatever the answer: where the model saw evidence for
pneumonia ("evidence for NORMAL" lit shoulders and clavicles, which means nothing on a film). How
much evidence there was is the probability, which the overlay uses as its colour strength. Layer
names come from the model card, never from this file.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.card import GradCamSpec
from engine.runtime import import_keras, import_tensorflow

MAP_EPSILON = 1e-8  # keeps an all-zero map at zero when it is scaled to [0, 1]


def layer_map(tf: Any, method: str, gradient: Any, activation: Any) -> Any:
    """One network's map of one layer, (N, H, W): the activations weighted by the gradient
    itself (HiResCAM) or by its mean over the map (Grad-CAM), summed over channels, ReLU."""
    if method != "hirescam":
        gradient = tf.reduce_mean(gradient, axis=(1, 2), keepdims=True)
    return tf.nn.relu(tf.reduce_sum(gradient * activation, -1))


def scaled_to_peak(tf: Any, cam: Any) -> Any:
    return cam / (tf.reduce_max(cam) + MAP_EPSILON)


class GradCam:
    """Heatmaps in [0, 1] on the card's grid (the finest of its feature layers)."""

    def __init__(self, model: Any, spec: GradCamSpec, image_size: int) -> None:
        keras = import_keras()
        tf = import_tensorflow()
        members = spec.members
        layers = len(members[0].feature_layers)
        self.map_model = keras.Model(
            model.inputs,
            [
                [[model.get_layer(name).output for name in m.feature_layers] for m in members],
                [model.get_layer(m.pooled_layer).output for m in members],
                model.outputs[0],
            ],
        )
        dense = [
            [tf.constant(w) for w in model.get_layer(m.dense_layer).get_weights()] for m in members
        ]
        grid = tf.constant(spec.grid, tf.int32)

        @tf.function(
            input_signature=[tf.TensorSpec((1, image_size, image_size, 1), tf.float32)],
            reduce_retracing=True,
        )
        def heatmap(image: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            with tf.GradientTape() as tape:
                feature_maps, pooled, probability = self.map_model(image, training=False)
                tape.watch(feature_maps)
                logits = [tf.matmul(f, k) + b for f, (k, b) in zip(pooled, dense, strict=True)]
                score = (tf.add_n(logits) / len(logits))[:, 0]
            grads = tape.gradient(score, feature_maps)
            fused = None
            for j in range(layers):
                cam = tf.add_n(
                    [
                        layer_map(tf, spec.method, g[j], f[j])
                        for g, f in zip(grads, feature_maps, strict=True)
                    ]
                )
                if layers > 1:
                    cam = tf.image.resize(cam[..., tf.newaxis], grid, method="bilinear")[..., 0]
                cam = scaled_to_peak(tf, cam[0])
                fused = cam if fused is None else fused * cam
            return scaled_to_peak(tf, fused), tf.reshape(probability, (-1,))[0]

        self._heatmap = heatmap

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """(S, S, 1) float32 model input -> 2-D float32 map in [0, 1] of pneumonia evidence."""
        return self.with_probability(image)[0]

    def with_probability(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """The map and the Keras model's own probability for the same input (ONNX parity)."""
        cam, prob = self._heatmap(image[np.newaxis].astype(np.float32))
        return cam.numpy(), float(prob.numpy())


class OnnxGradCam:
    """The bundle's Grad-CAM graph: probability, guard features and map in one ONNX Runtime call
    (the forward pass is shared with the answer; no TensorFlow in the process)."""

    def __init__(self, bundle: Any) -> None:
        self.bundle = bundle
        self.output = bundle.card.gradcam.graph_output

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.run(image)[self.output]

    def run(self, image: np.ndarray, threads: int | None = None) -> dict[str, np.ndarray]:
        """Every output of the graph for one (S, S, 1) input, the map as a 2-D array."""
        return self.bundle.run_gradcam(image, threads)
