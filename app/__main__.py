"""The service's command line.

python -m app serve [--host H] [--port P] [--workers N]      serve the HTTP API and the page
python -m app predict PATH... --out results.csv             score files with the same engine
python -m app dicom-node                                    a DICOM node: films in, SR + heatmap out
python -m app feedback import FILE                          readers' verdicts from a CSV (RIS)
python -m app records export [--since DATE] [--format F]    the record of answers, for audits
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tqdm import tqdm

from app.batch import collect_images, score_file, write_csv, write_overlay


def _local(args: argparse.Namespace, files: list[Path], heatmap_dir: Path | None) -> list[dict]:
    from app.recording import answer_log_from
    from app.settings import Settings
    from engine import Predictor

    settings = Settings()
    predictor = Predictor.from_settings(settings, **_overrides(args, heatmap_dir))
    answers = answer_log_from(settings)
    record = answers.submit if answers is not None else None
    rows = []
    try:
        for index, path in enumerate(tqdm(files, desc="predict", unit="image")):
            row, overlay = score_file(predictor, path, heatmap_dir is not None, record)
            rows.append(row)
            if heatmap_dir is not None and overlay is not None:
                write_overlay(heatmap_dir, index, path, overlay)
    finally:
        if answers is not None:
            answers.close()
    return rows


def _overrides(args: argparse.Namespace, heatmap_dir: Path | None) -> dict:
    overrides: dict = {"gradcam_enabled": heatmap_dir is not None}
    if args.model:
        overrides["model_dir"] = Path(args.model)
    if args.threshold is not None:
        overrides["threshold"] = args.threshold
    return overrides


def predict_command(args: argparse.Namespace) -> int:
    heatmap_dir = Path(args.heatmaps) if args.heatmaps else None
    if heatmap_dir:
        heatmap_dir.mkdir(parents=True, exist_ok=True)
    files = collect_images(args.paths)
    if args.backend == "ray":
        from app.batch_ray import score_with_ray

        rows = score_with_ray(files, _overrides(args, heatmap_dir), heatmap_dir, args.workers)
    else:
        rows = _local(args, files, heatmap_dir)
    write_csv(Path(args.out), rows)
    failures = sum(1 for row in rows if row["error"])
    print(f"scored {len(files) - failures} of {len(files)} files -> {args.out}", file=sys.stderr)
    if failures:
        print(f"{failures} files were not scored; see the error column", file=sys.stderr)
    return 0


def serve_command(args: argparse.Namespace) -> int:
    from app.serve import serve
    from app.settings import Settings

    settings = Settings()
    serve(
        args.host or settings.host,
        args.port or settings.port,
        args.workers or settings.workers,
    )
    return 0


def dicom_node_command(args: argparse.Namespace) -> int:
    from app.dicom_node.node import run
    from app.settings import Settings

    overrides = {k: v for k, v in (("dicom_host", args.host), ("dicom_port", args.port)) if v}
    run(Settings(**overrides))
    return 0


def _feedback(args: argparse.Namespace) -> int:
    from app.records_cli import feedback_command

    return feedback_command(args)


def _records(args: argparse.Namespace) -> int:
    from app.records_cli import records_command

    return records_command(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve the model over HTTP (settings from the environment)")
    s.add_argument("--host", default=None, help="default: HOST, else 127.0.0.1")
    s.add_argument("--port", type=int, default=None, help="default: PORT, else 8000")
    s.add_argument("--workers", type=int, default=None, help="default: WORKERS, else 1")
    s.set_defaults(func=serve_command)
    p = sub.add_parser("predict", help="score image files and folders into a CSV")
    p.add_argument("paths", nargs="+", help="image files or folders (searched recursively)")
    p.add_argument("--out", required=True, help="CSV to write")
    p.add_argument("--heatmaps", default=None, help="folder for Grad-CAM overlay PNGs")
    p.add_argument("--model", default=None, help="bundle folder (default: MODEL_DIR or shipped)")
    p.add_argument("--threshold", type=float, default=None, help="override the bundle threshold")
    p.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="local: this process; ray: a Ray Data job (local Ray, or RAY_ADDRESS's cluster)",
    )
    p.add_argument("--workers", type=int, default=2, help="ray: predictor actors (one model each)")
    p.set_defaults(func=predict_command)
    d = sub.add_parser(
        "dicom-node",
        help="receive films over DICOM (C-STORE), send back an SR and a heatmap capture",
        description=(
            "Settings from the environment: DICOM_AE_TITLE, DICOM_HOST, DICOM_PORT, "
            "DICOM_DESTINATION, DICOM_ALLOWED_CALLERS, DICOM_SPOOL_DIR, DICOM_METRICS_PORT."
        ),
    )
    d.add_argument("--host", default=None, help="default: DICOM_HOST, else 127.0.0.1")
    d.add_argument("--port", type=int, default=None, help="default: DICOM_PORT, else 11112")
    d.set_defaults(func=dicom_node_command)
    f = sub.add_parser("feedback", help="readers' verdicts: import a CSV (DATABASE_URL)")
    f_sub = f.add_subparsers(dest="action", required=True)
    fi = f_sub.add_parser(
        "import",
        help="CSV with request_id or sop_instance_uid, and label (NORMAL/PNEUMONIA); optional "
        "reader, comment",
    )
    fi.add_argument("file", help="the CSV")
    fi.add_argument("--reader", default="", help="reader for rows without a reader column")
    fi.set_defaults(func=_feedback)
    r = sub.add_parser("records", help="the record of answers (DATABASE_URL)")
    r_sub = r.add_subparsers(dest="action", required=True)
    re_ = r_sub.add_parser("export", help="every record (and its verdict) for an audit")
    re_.add_argument("--since", default=None, help="ISO date or time, e.g. 2026-12-01")
    re_.add_argument("--format", choices=("csv", "parquet"), default="csv")
    re_.add_argument("--out", default=None, help="file to write (csv default: standard output)")
    re_.set_defaults(func=_records)
    args = parser.parse_args(argv)
    if args.command == "predict":
        logging.basicConfig(level=logging.WARNING)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
