"""The from-scratch CNN: 7 blocks of Conv2D + BatchNorm + ReLU + MaxPool2D + Dropout, one logit.

Built with the Functional API and a named input, which both tf2onnx export and Grad-CAM need in
Keras 3. With 'same' pooling, a 150 px input gives maps of 150, 75, 38, 19, 10, 5, 3 px at the seven
convolutions. A member network ends in a linear `logit`: the sigmoid, the calibration and the
average over ensemble members are added when the served graph is built (training/serving.py).
BatchNorm momentum is 0.9, not 0.99: with ~60 steps an epoch the slow default leaves the moving
statistics far from the batch ones for many epochs, and validation AUC sits at 0.5 meanwhile.
"""

from __future__ import annotations

import keras
from keras import layers

INPUT_NAME = "image"
BLOCK_FILTERS = (16, 32, 64, 64, 128, 128, 256)
BLOCK_DROPOUT = (0.05, 0.05, 0.1, 0.1, 0.2, 0.2, 0.3)
POOLED_LAYER = "head_dropout"
LOGIT_LAYER = "logit"


def block_output(block: int) -> str:
    """The layer whose output is block `block`'s feature map (1-based)."""
    return f"block{block}_relu"


def build_cnn(image_size: int = 150, head_dropout: float = 0.4) -> keras.Model:
    """Return the uncompiled member network: input (S, S, 1) in [0, 1] -> one logit."""
    inputs = keras.Input(shape=(image_size, image_size, 1), name=INPUT_NAME)
    x = inputs
    for block, (filters, dropout) in enumerate(zip(BLOCK_FILTERS, BLOCK_DROPOUT, strict=True), 1):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"block{block}_conv")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"block{block}_bn")(x)
        x = layers.Activation("relu", name=block_output(block))(x)
        x = layers.MaxPooling2D(2, padding="same", name=f"block{block}_pool")(x)
        x = layers.Dropout(dropout, name=f"block{block}_dropout")(x)
    x = layers.GlobalAveragePooling2D(name="global_pool")(x)
    x = layers.Dropout(head_dropout, name=POOLED_LAYER)(x)
    logit = layers.Dense(1, name=LOGIT_LAYER)(x)
    return keras.Model(inputs, logit, name="cxr_pneumonia_cnn")


def build_augmenter(
    rotation_degrees: float = 10.0,
    zoom: float = 0.1,
    shift: float = 0.1,
    noise_std: float = 0.0,
    seed: int = 0,
) -> keras.Sequential:
    """Augmentation for training batches only: rotation, zoom, shift, pixel noise."""
    steps = [
        layers.RandomRotation(rotation_degrees / 360.0, fill_mode="constant", seed=seed),
        layers.RandomZoom(zoom, zoom, fill_mode="constant", seed=seed + 1),
        layers.RandomTranslation(shift, shift, fill_mode="constant", seed=seed + 2),
    ]
    if noise_std > 0:
        steps.append(layers.GaussianNoise(noise_std, seed=seed + 3))
    return keras.Sequential(steps, name="augment")
