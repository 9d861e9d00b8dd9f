"""Where a Grad-CAM map points: the ring is read on a 10x10 grid whatever the map's own grid."""

from __future__ import annotations

import numpy as np

from training.heatmap_stats import mass_inside, peak_on_ring, summarize_maps


def test_a_peak_one_cell_in_from_the_edge_of_a_fine_grid_is_on_the_10x10_ring():
    cam = np.zeros((19, 19), np.float32)
    cam[1, 9] = 1.0  # the second row of 19: inside that grid's ring, on the top row of 10x10
    assert not peak_on_ring(cam, grid=None)
    assert peak_on_ring(cam)


def test_a_central_peak_is_not_on_the_ring_and_keeps_its_mass_in_the_thorax_box():
    cam = np.zeros((10, 10), np.float32)
    cam[4:6, 4:6] = 1.0
    assert not peak_on_ring(cam) and mass_inside(cam) > 0.95
    edge = np.zeros((10, 10), np.float32)
    edge[0, :] = 1.0
    summary = summarize_maps([cam, edge, np.zeros((10, 10), np.float32)])
    assert summary["maps"] == 3 and summary["empty_maps"] == 1
    assert summary["peak_on_outer_ring_share"] == 0.5
    assert summary["peak_on_ring_or_empty_share"] == 2 / 3
