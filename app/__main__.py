"""Batch scoring with the service's engine: python -m app predict PATH... --out results.csv"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from pathlib import Path

import cv2
from tqdm import tqdm

from imaging import IMAGE_SUFFIXES


def collect_images(paths: list[str]) -> list[Path]:
    """Files as given, and every JPEG/PNG under the folders given, sorted."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(
                sorted(
                    p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                )
            )
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
    return found


def predict_command(args: argparse.Namespace) -> int:
    from app.settings import Settings
    from engine import Predictor
    from imaging import ImageError

    heatmap_dir = Path(args.heatmaps) if args.heatmaps else None
    overrides: dict = {"gradcam_enabled": heatmap_dir is not None}
    if args.model:
        overrides["model_dir"] = Path(args.model)
    if args.threshold is not None:
        overrides["threshold"] = args.threshold
    predictor = Predictor.from_settings(Settings(), **overrides)
    if heatmap_dir:
        heatmap_dir.mkdir(parents=True, exist_ok=True)
    files = collect_images(args.paths)
    failures = 0
    with open(args.out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "probability", "label", "threshold", "model_version", "error"])
        for index, path in enumerate(tqdm(files, desc="predict", unit="image")):
            try:
                result = predictor.predict(path.read_bytes(), heatmap=heatmap_dir is not None)
            except (ImageError, OSError) as exc:
                failures += 1
                writer.writerow([str(path), "", "", "", predictor.bundle.version, str(exc)])
                continue
            writer.writerow(
                [
                    str(path),
                    f"{result.probability:.6f}",
                    result.label,
                    f"{result.threshold:.6f}",
                    predictor.bundle.version,
                    "",
                ]
            )
            if heatmap_dir is not None and result.heatmap is not None:
                name = f"{index:05d}_{path.stem}_gradcam.png"
                cv2.imwrite(str(heatmap_dir / name), result.heatmap.overlay)
    print(f"scored {len(files) - failures} of {len(files)} files -> {args.out}", file=sys.stderr)
    if failures:
        print(f"{failures} files could not be read; see the error column", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="score image files and folders into a CSV")
    p.add_argument("paths", nargs="+", help="image files or folders (searched recursively)")
    p.add_argument("--out", required=True, help="CSV to write")
    p.add_argument("--heatmaps", default=None, help="folder for Grad-CAM overlay PNGs")
    p.add_argument("--model", default=None, help="bundle folder (default: MODEL_DIR or shipped)")
    p.add_argument("--threshold", type=float, default=None, help="override the bundle threshold")
    p.set_defaults(func=predict_command)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
