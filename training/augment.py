"""Augmentations that break the film-edge shortcut: painted-over borders and pasted markers.

A model that reads the labels and lead markers printed near a film's edge learns the hospital's
habits, not the lungs; random bands over the borders and random bright markers anywhere make
those places useless to it.
"""

from __future__ import annotations

import tensorflow as tf


def occlude_borders(x: tf.Tensor, rate: float, max_fraction: float = 0.15) -> tf.Tensor:
    """Per image with probability `rate`: one side's band (2-15% wide) set to a random gray."""
    b = tf.shape(x)[0]
    s = x.shape[1]
    apply = tf.random.uniform((b,)) < rate
    side = tf.random.uniform((b,), 0, 4, tf.int32)
    width = tf.random.uniform((b, 1, 1), 0.02, max_fraction) * s
    fill = tf.random.uniform((b, 1, 1, 1))
    yy = tf.range(s, dtype=tf.float32)[None, :, None] + tf.zeros((b, s, s))
    xx = tf.range(s, dtype=tf.float32)[None, None, :] + tf.zeros((b, s, s))
    masks = tf.stack([yy < width, yy >= s - width, xx < width, xx >= s - width], axis=1)
    mask = tf.gather(masks, side, batch_dims=1) & apply[:, None, None]
    return tf.where(mask[..., None], fill, x)


def paste_markers(x: tf.Tensor, rate: float) -> tf.Tensor:
    """Per image with probability `rate`: a bright rectangle (like a lead marker) anywhere."""
    b = tf.shape(x)[0]
    s = x.shape[1]
    apply = tf.random.uniform((b, 1, 1)) < rate
    h = tf.random.uniform((b, 1, 1), 0.03, 0.10) * s
    w = tf.random.uniform((b, 1, 1), 0.03, 0.15) * s
    y0 = tf.random.uniform((b, 1, 1)) * (s - h)
    x0 = tf.random.uniform((b, 1, 1)) * (s - w)
    value = tf.random.uniform((b, 1, 1, 1), 0.8, 1.0)
    yy = tf.range(s, dtype=tf.float32)[None, :, None]
    xx = tf.range(s, dtype=tf.float32)[None, None, :]
    mask = (yy >= y0) & (yy < y0 + h) & (xx >= x0) & (xx < x0 + w) & apply
    return tf.where(mask[..., None], value, x)
