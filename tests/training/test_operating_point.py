import math

import numpy as np
import pytest

from engine.card import Calibration
from training.calibration import sigmoid
from training.operating_point import expected_cost_cut, expected_cost_threshold, mean_logit_cut


def test_equal_costs_cut_at_one_half_and_dearer_misses_lower_it():
    assert expected_cost_cut(1.0) == 0.5
    assert expected_cost_cut(3.0) == pytest.approx(0.25)
    with pytest.raises(ValueError):
        expected_cost_cut(0.0)


def test_logit_cut_gives_the_same_decision_as_the_probability_cut():
    calibration = Calibration(slope=0.8, bias=0.5, fitted_on="test")
    cut = expected_cost_cut(2.0)
    z = mean_logit_cut(cut, calibration)
    assert sigmoid(calibration.slope * z + calibration.bias) == pytest.approx(cut)
    assert sigmoid(calibration.slope * (z + 1e-6) + calibration.bias) > cut


def test_threshold_records_rule_costs_and_prevalence():
    calibration = Calibration(slope=1.0, bias=-0.2, fitted_on="test")
    labels = np.array([0, 0, 0, 1])
    threshold = expected_cost_threshold(calibration, labels, "four films", 1.0)
    assert threshold.rule == "expected_cost" and threshold.value == 0.5
    assert threshold.calibration_prevalence == 0.25
    assert threshold.mean_logit_cut == pytest.approx(0.2)
    assert not math.isnan(threshold.false_negative_cost)
