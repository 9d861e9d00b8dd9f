"""`python -m training export`: assemble a bundle from member checkpoints already trained.

For when members were trained separately (runs/<time>/member*/best.keras, perhaps on several
machines) or a bundle must be rebuilt after a tf2onnx upgrade: it reads the same split and cache as
training (same `split_seed`), calibrates, chooses the threshold, fits the guard and exports.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import keras

from imaging import PreprocessingParams
from training.assemble import assemble_bundle
from training.data import prepare_splits
from training.settings import TrainSettings

log = logging.getLogger(__name__)


def _short(path: Path) -> str:
    """`<run>/member0/best.keras` for the card: names the checkpoint without the machine's path."""
    path = Path(path)
    return "/".join(path.parts[-3:])


def export_from_checkpoints(
    member_paths: list[Path],
    out_dir: Path,
    data_dir: Path,
    settings: TrainSettings,
    cache_dir: Path | None = None,
    params: PreprocessingParams | None = None,
) -> Path:
    params = params or PreprocessingParams()
    members = [keras.saving.load_model(path, compile=False) for path in member_paths]
    splits, train_data, val_data = prepare_splits(data_dir, params, settings, cache_dir)
    extra = {
        "data": {"source": Path(data_dir).name, "splits": splits.summary(), "skipped_files": []},
        "training": {
            **asdict(settings),
            "members": len(members),
            "assembled_from": [_short(p) for p in member_paths],
        },
    }
    assemble_bundle(members, out_dir, params, settings, train_data, val_data, extra)
    log.info("assembled %d member(s) into %s", len(members), out_dir)
    return Path(out_dir)
