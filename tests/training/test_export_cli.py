"""`python -m training export`: a bundle rebuilt from checkpoints records only what it knows."""

from __future__ import annotations

import json

import pytest

from training.export_cli import export_from_checkpoints
from training.settings import TrainSettings


@pytest.mark.slow
def test_export_records_the_checkpoints_their_logs_and_the_seeds_given(
    synthetic_bundle, small_kaggle, tmp_path
):
    run = synthetic_bundle.parent / "run"  # where the fixture's training wrote its members
    checkpoints = [run / "member0" / "best.keras", run / "member1" / "best.keras"]
    settings = TrainSettings(val_fraction=0.35, upload_variants=2, consistency=0.1)
    with pytest.raises(ValueError, match="1 seeds given for 2 member checkpoints"):
        export_from_checkpoints(checkpoints, tmp_path / "x", small_kaggle, settings, seeds=[42])
    out = export_from_checkpoints(
        checkpoints, tmp_path / "bundle", small_kaggle, settings, seeds=[42, 43]
    )
    training = json.loads((out / "model_card.json").read_text())["training"]
    assert [r["seed"] for r in training["member_runs"]] == [42, 43]
    assert training["member_runs"][0]["checkpoint"].endswith("run/member0/best.keras")
    assert all(
        r["epochs_run"] == 6 and 0 <= r["best_validation_auc"] <= 1 for r in training["member_runs"]
    )
    assert "epochs" not in training and "seed" not in training  # not known from a checkpoint
    assert training["split_seed"] == 42 and training["members"] == 2
