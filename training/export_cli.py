"""`python -m training export`: assemble a bundle from member checkpoints already trained.

For when members were trained separately (runs/<time>/member*/best.keras, perhaps on several
machines) or a bundle must be rebuilt after a tf2onnx upgrade: it reads the same split and cache as
training (same `split_seed`), calibrates, chooses the threshold, fits the guard and exports.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import keras

from imaging import PreprocessingParams
from training.assemble import assemble_bundle
from training.data import prepare_splits
from training.monitoring_reference import add_monitoring_reference
from training.settings import SPLIT_FLAGS, TrainSettings

log = logging.getLogger(__name__)


def _short(path: Path) -> str:
    """`<run>/member0/best.keras` for the card: names the checkpoint without the machine's path."""
    path = Path(path)
    return "/".join(path.parts[-3:])


def member_run(checkpoint: Path, seed: int | None) -> dict:
    """What the card can say of a checkpoint: its seed when told, and from the training log beside
    it (runs/<time>/member<k>/training_log.csv) its epochs and best validation AUC."""
    run: dict = {"seed": seed, "checkpoint": _short(checkpoint)}
    log_csv = Path(checkpoint).parent / "training_log.csv"
    if log_csv.is_file():
        with open(log_csv, newline="") as handle:
            aucs = [float(row["val_auc"]) for row in csv.DictReader(handle)]
        if aucs:
            run["epochs_run"] = len(aucs)
            run["best_epoch"] = aucs.index(max(aucs)) + 1
            run["best_validation_auc"] = round(max(aucs), 5)
    return run


def export_from_checkpoints(
    member_paths: list[Path],
    out_dir: Path,
    data_dir: Path,
    settings: TrainSettings,
    cache_dir: Path | None = None,
    params: PreprocessingParams | None = None,
    seeds: list[int] | None = None,
) -> Path:
    """Only the split settings are facts here; the members' own training settings are not known
    from a checkpoint, so the card records the split, the checkpoints and their logs."""
    params = params or PreprocessingParams()
    if seeds is not None and len(seeds) != len(member_paths):
        raise ValueError(f"{len(seeds)} seeds given for {len(member_paths)} member checkpoints")
    members = [keras.saving.load_model(path, compile=False) for path in member_paths]
    splits, train_data, val_data = prepare_splits(data_dir, params, settings, cache_dir)
    known = {field: getattr(settings, field) for field in SPLIT_FLAGS}
    extra = {
        "data": {"source": Path(data_dir).name, "splits": splits.summary(), "skipped_files": []},
        "training": {
            **known,
            "members": len(members),
            "assembled_from": [_short(p) for p in member_paths],
            "member_runs": [
                member_run(p, seeds[k] if seeds else None) for k, p in enumerate(member_paths)
            ],
        },
    }
    assemble_bundle(members, out_dir, params, settings, train_data, val_data, extra)
    add_monitoring_reference(out_dir, data_dir)  # what monitoring compares a deployment with
    log.info("assembled %d member(s) into %s", len(members), out_dir)
    return Path(out_dir)
