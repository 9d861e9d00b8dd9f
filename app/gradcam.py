"""Grad-CAM on the retained Keras model, compiled once as a tf.function.

The class score is the logit (the sigmoid's input), not the probability: at probabilities near 0/1
the sigmoid's gradient vanishes and the map would be noise. The map explains the predicted class:
evidence for PNEUMONIA when that is the label, evidence against it when the label is NORMAL.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def configure_tensorflow(threads: int) -> None:
    """Bound TensorFlow's thread pools; must run before TensorFlow executes anything."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # already initialised (e.g. several apps in one test process)
        pass


class GradCam:
    """Heatmaps in [0, 1] at the resolution of `layer_name`'s feature map."""

    def __init__(self, model: Any, layer_name: str, image_size: int) -> None:
        import keras
        import tensorflow as tf

        head_input = model.get_layer("head_dropout").output
        dense = model.get_layer("probability")
        self.map_model = keras.Model(model.inputs, [model.get_layer(layer_name).output, head_input])
        kernel, bias = (tf.constant(w) for w in dense.get_weights())
        self.layer_name = layer_name

        @tf.function(
            input_signature=[
                tf.TensorSpec((1, image_size, image_size, 1), tf.float32),
                tf.TensorSpec((), tf.float32),
            ],
            reduce_retracing=True,
        )
        def heatmap(image: tf.Tensor, sign: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            with tf.GradientTape() as tape:
                feature_map, features = self.map_model(image, training=False)
                tape.watch(feature_map)
                logit = tf.matmul(features, kernel) + bias
                score = sign * logit[:, 0]
            grads = tape.gradient(score, feature_map)
            weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
            cam = tf.nn.relu(tf.reduce_sum(weights * feature_map, axis=-1))[0]
            cam = cam / (tf.reduce_max(cam) + 1e-8)
            return cam, tf.sigmoid(logit)[0, 0]

        self._heatmap = heatmap

    def __call__(self, image: np.ndarray, explain_pneumonia: bool = True) -> np.ndarray:
        """(S, S, 1) float32 model input -> 2-D float32 map in [0, 1]."""
        return self.with_probability(image, explain_pneumonia)[0]

    def with_probability(
        self, image: np.ndarray, explain_pneumonia: bool = True
    ) -> tuple[np.ndarray, float]:
        """The map and Keras's own probability for the same input (used to check ONNX parity)."""
        sign = np.float32(1.0 if explain_pneumonia else -1.0)
        cam, prob = self._heatmap(image[np.newaxis].astype(np.float32), sign)
        return cam.numpy(), float(prob.numpy())
