"""The guard's statistics: training-like features score low, shifted ones high; saved exactly."""

from __future__ import annotations

import numpy as np

from engine.card import OutOfDistribution
from engine.ood import OodGuard
from training.ood import fit_guard, save_stats

SLICES = (("m0_block1", 0, 8), ("m0_block2", 8, 20))


MIXING = np.random.default_rng(42).normal(0, 0.3, (20, 20))


def _features(rng, n, shift=0.0):
    """Correlated features, the same distribution on every call (moved by `shift`)."""
    return rng.normal(0, 1, (n, 20)) @ MIXING + rng.normal(0, 1, (n, 20)) + shift


def test_shifted_features_score_above_the_threshold(tmp_path):
    rng = np.random.default_rng(0)
    train, val = _features(rng, 600), _features(rng, 200)
    labels = rng.integers(0, 2, 600)
    guard = fit_guard(train, labels, val, SLICES, fitted_on="train", chosen_on="val")
    assert guard.spec.threshold > max(guard.score(f) for f in val)
    far = _features(rng, 50, shift=3.0)
    assert min(guard.score(f) for f in far) > guard.spec.threshold
    save_stats(guard, tmp_path)
    again = OodGuard.load(tmp_path, guard.spec)
    assert all(np.isclose(again.score(f), guard.score(f)) for f in far[:5])


def test_a_blank_picture_is_refused_whatever_its_score():
    rng = np.random.default_rng(1)
    train = _features(rng, 300)
    guard = fit_guard(train, rng.integers(0, 2, 300), train[:100], SLICES, "t", "v")
    assert isinstance(guard.spec, OutOfDistribution)
    verdict = guard.judge(train[0], np.full((100, 100), 200, np.uint8))
    assert not verdict.in_distribution and "blank" in verdict.reason
    noisy = np.random.default_rng(2).integers(0, 255, (100, 100)).astype(np.uint8)
    assert guard.judge(train[0], noisy).in_distribution
