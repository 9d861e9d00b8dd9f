"""The batch job as a Ray Data pipeline: read the files, score them on a pool of predictor actors
(one ONNX session and one Grad-CAM model each), and return the same rows as the local backend.

Local Ray on this machine when RAY_ADDRESS is unset; the cluster it names when it is set (then the
files and the heatmap folder must be on storage every node sees).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from app.batch import COLUMNS, score_bytes, write_overlay

log = logging.getLogger(__name__)


class PredictorActor:
    """One per Ray worker: loads the bundle once, then scores batches of files."""

    def __init__(self, overrides: dict[str, Any], heatmap_dir: str | None, order: dict[str, int]):
        from app.settings import Settings
        from engine import Predictor

        self.predictor = Predictor.from_settings(Settings(), **overrides)
        self.heatmap_dir = Path(heatmap_dir) if heatmap_dir else None
        self.order = order

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        out: dict[str, list] = {column: [] for column in (*COLUMNS, "index")}
        for path, data in zip(batch["path"], batch["bytes"], strict=True):
            index = self.order[str(Path(str(path)).resolve())]
            row, overlay = score_bytes(
                self.predictor, "", bytes(data), heatmap=self.heatmap_dir is not None
            )
            if self.heatmap_dir is not None and overlay is not None:
                write_overlay(self.heatmap_dir, index, Path(str(path)), overlay)
            for column in COLUMNS:
                out[column].append(row[column])
            out["index"].append(index)
        return out


def score_with_ray(
    files: list[Path],
    overrides: dict[str, Any],
    heatmap_dir: Path | None,
    workers: int,
    batch_size: int = 8,
) -> list[dict[str, Any]]:
    import ray

    address = os.environ.get("RAY_ADDRESS")
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            # One logical CPU per actor, plus one for the tasks that read the files: with no
            # spare CPU the reads wait for the actors and the actors for the reads.
            ray.init(num_cpus=max(workers, 1) + 1, include_dashboard=False, log_to_driver=False)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = True
    order = {str(path.resolve()): i for i, path in enumerate(files)}
    dataset = ray.data.read_binary_files([str(p.resolve()) for p in files], include_paths=True)
    scored = dataset.map_batches(
        PredictorActor,
        fn_constructor_args=(overrides, str(heatmap_dir) if heatmap_dir else None, order),
        batch_size=batch_size,
        batch_format="numpy",
        concurrency=workers,
        num_cpus=1,
    )
    rows = sorted(scored.take_all(), key=lambda row: row["index"])
    # The file column as the local backend writes it: the path as it was given.
    return [
        {**{column: row[column] for column in COLUMNS}, "file": str(files[row["index"]])}
        for row in rows
    ]
