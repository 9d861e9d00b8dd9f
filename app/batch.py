"""Batch scoring with the service's engine: one CSV row per file, overlays as PNG files.

The row for a file is the same whichever backend scores it (local loop or Ray); a file that cannot
be scored gets its row with the reason, and never stops the job.
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from app.recording import refusal_record
from engine import Predictor
from engine.population import OutsidePopulationError
from engine.records.rows import answer_row
from imaging import ImageError, NotChestXrayError, is_image_file

SOURCE = "batch"
COLUMNS = (
    "file",
    "probability",
    "label",
    "threshold",
    "in_distribution",
    "ood_score",
    "model_version",
    "warnings",
    "population_score",
    "error",
)


def collect_images(paths: list[str]) -> list[Path]:
    """Files as given, and every JPEG, PNG and DICOM under the folders given, sorted."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and is_image_file(p)))
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
    return found


Record = Callable[[dict[str, Any]], None]


def score_file(
    predictor: Predictor, path: Path, heatmap: bool, record: Record | None = None
) -> tuple[dict[str, Any], np.ndarray | None]:
    """(CSV row, overlay or None) for one file; errors become the row's `error`; `record`
    receives the answer's (or refusal's) record."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return error_row(predictor, str(path), str(exc)), None
    return score_bytes(predictor, str(path), data, heatmap, record)


def error_row(predictor: Predictor, name: str, error: str = "") -> dict[str, Any]:
    """A row with only the file, the model version and (if any) the error filled in."""
    row: dict[str, Any] = dict.fromkeys(COLUMNS, "")
    row.update(file=name, model_version=predictor.bundle.version, error=error)
    return row


def score_bytes(
    predictor: Predictor, name: str, data: bytes, heatmap: bool, record: Record | None = None
) -> tuple[dict[str, Any], np.ndarray | None]:
    """(CSV row, overlay or None) for one encoded image; errors become the row's `error`."""
    row = error_row(predictor, name)
    request_id = uuid.uuid4().hex[:16]
    try:
        result = predictor.predict(data, heatmap=heatmap)
    except ImageError as exc:
        if record is not None:
            record(refusal_record(exc, request_id, SOURCE, predictor.bundle.version, data))
        return refused_row(row, exc), None
    if record is not None:
        record(answer_row(result, request_id, SOURCE, predictor.bundle.version, data))
    row.update(
        probability=f"{result.probability:.6f}",
        label=result.label,
        threshold=f"{result.threshold:.6f}",
        in_distribution=str(result.in_distribution).lower(),
        ood_score="" if result.ood_score is None else f"{result.ood_score:.4f}",
        warnings="; ".join(result.warnings),
        population_score=(
            "" if result.population_score is None else f"{result.population_score:.4f}"
        ),
    )
    return row, (result.heatmap.overlay if result.heatmap is not None else None)


def refused_row(row: dict[str, Any], exc: ImageError) -> dict[str, Any]:
    """The row of a file the engine refused or could not read, with the reason."""
    if isinstance(exc, NotChestXrayError):
        row["in_distribution"] = "false"
        row["ood_score"] = "" if exc.ood_score is None else f"{exc.ood_score:.4f}"
        row["error"] = f"not_chest_xray: {exc}"
    elif isinstance(exc, OutsidePopulationError):
        row["error"] = f"{exc.code}: {exc}"
    else:
        row["error"] = str(exc)
    return row


def overlay_name(index: int, path: Path) -> str:
    return f"{index:05d}_{path.stem}_gradcam.png"


def write_overlay(folder: Path, index: int, path: Path, overlay: np.ndarray) -> None:
    cv2.imwrite(str(folder / overlay_name(index, path)), overlay)


def write_csv(out: Path, rows: list[dict[str, Any]]) -> None:
    with open(out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
