"""Command line: python -m training train|evaluate|export|calibrate|gradcam-graph --help."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from training.settings import SPLIT_FLAGS, TrainSettings

# The Kaggle-layout folder when --data-dir is not given.
DATA_DIR_ENV = "CXR_DATA_DIR"

DEFAULTS = TrainSettings()
# The TrainSettings fields a user sets from the command line (--epochs, --batch-size, ...).
# Every TrainSettings field is a flag of `train` (--epochs, --batch-size, ...), with this help.
TRAIN_FLAGS = {
    "epochs": "at most; early stopping may end sooner",
    "batch_size": "the seed used 10",
    "learning_rate": "Adam, initial",
    "val_fraction": "share of train/ carved out for validation when val/ is missing or tiny",
    "upload_variants": "simulated full-resolution uploads cached per image (0 = none)",
    "early_stop_patience": "epochs without a better validation AUC before stopping",
    "lr_patience": "epochs without a better validation AUC before halving the learning rate",
    "rotation_degrees": "random rotation of training batches, +-degrees",
    "zoom": "random zoom of training batches, +-fraction",
    "shift": "random shift of training batches, +-fraction",
    "noise_std": "Gaussian pixel noise on training batches",
    "border_erase_rate": "share of training images with one border band painted over",
    "marker_rate": "share of training images with a bright marker pasted somewhere",
    "consistency": "weight of the squared logit gap between an upload and its invisible twin",
    "members": "networks averaged in the served model (seeds SEED, SEED+1, ...)",
    "teacher": "bundle folder whose answers, averaged over each image's cached views, are the "
    "training targets instead of the labels (distillation); empty = the labels",
    "gradcam_blocks": "blocks whose Grad-CAM maps are multiplied (comma-separated)",
    "seed": "initial weights and augmentation of the first member",
    "split_seed": "validation carve and cached uploads, shared by all members",
    "limit_per_class": "use only N images per class (0 = all); for quick trials",
    "false_negative_cost": "cost of a missed pneumonia relative to a false alarm; the threshold "
    "on the calibrated probability is 1 / (1 + this)",
}
# The preprocessing chain's knobs (imaging.PreprocessingParams) a researcher may change; the
# chosen values travel in the model card, so the service runs the same chain.
CHAIN_FLAGS = {
    "median_ksize": "median filter size (1 = off)",
    "clahe_clip_limit": "CLAHE clip limit",
    "clahe_tile_grid": "CLAHE tiles per side",
    "jpeg_reduced_min_side": "large JPEGs decode at reduced scale down to this short side (px)",
}


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, but not "(default: None)" after required or unset options."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.required or action.default is None:
            return action.help or ""
        return super()._get_help_string(action)


def _add_data_dir(parser: argparse.ArgumentParser, help_text: str) -> None:
    """--data-dir, required unless $CXR_DATA_DIR names the folder."""
    default = os.environ.get(DATA_DIR_ENV)
    parser.add_argument(
        "--data-dir",
        default=default,
        required=default is None,
        help=f"{help_text} (default: ${DATA_DIR_ENV})",
    )


def _chain(args: argparse.Namespace):
    from imaging import PreprocessingParams

    return PreprocessingParams(**{field: getattr(args, field) for field in CHAIN_FLAGS})


def _train(args: argparse.Namespace) -> None:
    from training.train import train

    settings = TrainSettings(**{field: getattr(args, field) for field in TRAIN_FLAGS})
    train(
        Path(args.data_dir),
        Path(args.out),
        settings,
        params=_chain(args),
        run_dir=args.run_dir,
        cache_dir=args.cache_dir,
    )


def _evaluate(args: argparse.Namespace) -> None:
    from training.evaluate import evaluate

    evaluate(
        Path(args.model),
        Path(args.data_dir),
        Path(args.out) if args.out else None,
        split=args.split,
        update_card=args.update_card,
        robustness_checks=not args.quick,
        heatmaps=not args.quick,
        samples_dir=Path(args.samples) if args.samples else None,
    )


def _export(args: argparse.Namespace) -> None:
    from training.export_cli import export_from_checkpoints

    settings = TrainSettings(**{field: getattr(args, field) for field in SPLIT_FLAGS})
    export_from_checkpoints(
        [Path(p) for p in args.members],
        Path(args.out),
        Path(args.data_dir),
        settings,
        cache_dir=args.cache_dir,
        params=_chain(args),
        seeds=args.seeds,
    )


def _calibrate(args: argparse.Namespace) -> None:
    from training.site_calibration import SiteDataError, calibrate_site

    if (args.data_dir is None) == (args.from_records is None):
        raise SystemExit("calibrate: give either --data-dir SITE or --from-records DATABASE_URL")
    try:
        if args.from_records:
            from training.records_calibration import calibrate_from_records

            out, held_out = calibrate_from_records(
                args.from_records, Path(args.model), Path(args.out), args.false_negative_cost
            )
            print(
                f"held-out half ({held_out['judged']} verdicts): ECE "
                f"{held_out['ece_10_bins_before']:.4f} before, "
                f"{held_out['ece_10_bins_after']:.4f} after"
            )
        else:
            out = calibrate_site(
                Path(args.model), Path(args.data_dir), Path(args.out), args.false_negative_cost
            )
    except SiteDataError as exc:
        raise SystemExit(f"calibrate: {exc}") from None
    print(f"site-calibrated bundle: {out} (report: {out / 'site_calibration' / 'report.md'})")


def _gradcam_graph(args: argparse.Namespace) -> None:
    from training.export import ExportError
    from training.gradcam_graph import add_to_bundle

    try:
        checked = add_to_bundle(Path(args.model), Path(args.films))
    except ExportError as exc:
        raise SystemExit(f"gradcam-graph: {exc}") from None
    print(
        f"{args.model}: gradcam.onnx written; on {checked.images} films its maps differ from "
        f"TensorFlow's by at most {checked.max_abs_diff:.2g} (correlation >= "
        f"{checked.min_correlation:.6f})"
    )


def _population_check(args: argparse.Namespace) -> None:
    from training.population_check import add_population_check

    try:
        measured = add_population_check(Path(args.model), Path(args.data_dir), Path(args.adults))
    except ValueError as exc:
        raise SystemExit(f"population-check: {exc}") from None
    films = 100 * measured["adult_films_flagged_out_of_fold"]
    variants = 100 * measured["adults_flagged_out_of_fold"]
    children = 100 * measured["validation_children_flagged"]
    print(
        f"{args.model}: population check written (threshold {measured['threshold']:.3f}); "
        f"adults' films flagged out of fold {films:.1f}% (all variants {variants:.1f}%), "
        f"validation children {children:.2f}%"
    )


def _monitoring_reference(args: argparse.Namespace) -> None:
    from training.monitoring_reference import add_monitoring_reference

    try:
        path = add_monitoring_reference(Path(args.model), Path(args.data_dir))
    except ValueError as exc:
        raise SystemExit(f"monitoring-reference: {exc}") from None
    print(f"{args.model}: monitoring reference written ({path.name})")


def _add_settings_flags(
    parser: argparse.ArgumentParser, flags: dict[str, str], defaults: object = DEFAULTS
) -> None:
    for field, help_text in flags.items():
        default = getattr(defaults, field)
        flag = "--" + field.replace("_", "-")
        parser.add_argument(flag, dest=field, type=type(default), default=default, help=help_text)


def build_parser() -> argparse.ArgumentParser:
    from imaging import PreprocessingParams

    chain_defaults = PreprocessingParams()
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser(
        "train",
        formatter_class=_HelpFormatter,
        help="train on a Kaggle-layout folder and export a bundle",
    )
    _add_data_dir(t, "Kaggle-layout folder with train/ [val/] [test/]")
    t.add_argument("--out", required=True, help="bundle folder to write (e.g. models/my-model)")
    _add_settings_flags(t, TRAIN_FLAGS)
    _add_settings_flags(t, CHAIN_FLAGS, chain_defaults)
    t.add_argument(
        "--run-dir", default=None, help="logs and checkpoints (runs/<time> when not given)"
    )
    t.add_argument("--cache-dir", default="runs/cache", help="preprocessed-image cache")
    t.set_defaults(func=_train)

    e = sub.add_parser(
        "evaluate",
        formatter_class=_HelpFormatter,
        help="metrics, per-image CSV, plots and a report for a bundle",
    )
    e.add_argument("--model", required=True, help="bundle folder")
    _add_data_dir(e, "Kaggle-layout folder")
    e.add_argument("--split", default="test", help="which split to score")
    e.add_argument("--out", default=None, help="report folder (BUNDLE/evaluation when not given)")
    e.add_argument(
        "--update-card", action="store_true", help="write the metrics into the bundle's model card"
    )
    e.add_argument(
        "--samples",
        default=None,
        help="a folder of full-resolution films: guard refusals and robustness on them too",
    )
    e.add_argument("--quick", action="store_true", help="skip the robustness and Grad-CAM checks")
    e.set_defaults(func=_evaluate)

    x = sub.add_parser(
        "export",
        formatter_class=_HelpFormatter,
        help="assemble a bundle from trained member checkpoints (calibrate, threshold, guard)",
    )
    x.add_argument(
        "--members", nargs="+", required=True, help="runs/<time>/member*/best.keras files"
    )
    x.add_argument("--out", required=True, help="bundle folder to write")
    x.add_argument(
        "--seeds", nargs="+", type=int, default=None, help="the members' seeds, for the card"
    )
    _add_data_dir(x, "the Kaggle-layout folder the members were trained on")
    _add_settings_flags(x, {field: TRAIN_FLAGS[field] for field in SPLIT_FLAGS})
    _add_settings_flags(x, CHAIN_FLAGS, chain_defaults)
    x.add_argument("--cache-dir", default="runs/cache", help="preprocessed-image cache")
    x.set_defaults(func=_export)

    c = sub.add_parser(
        "calibrate",
        formatter_class=_HelpFormatter,
        help="re-fit calibration and threshold on a site's own labelled films (networks unchanged)",
    )
    c.add_argument("--model", required=True, help="bundle folder to start from")
    c.add_argument(
        "--data-dir",
        default=None,
        help="SITE/NORMAL and SITE/PNEUMONIA, the Kaggle layout, or a CSV of file,label",
    )
    c.add_argument(
        "--from-records",
        default=None,
        metavar="DATABASE_URL",
        help="instead of films: the service's record of answers and readers' verdicts",
    )
    c.add_argument("--out", required=True, help="new bundle folder (must not exist or be empty)")
    c.add_argument(
        "--false-negative-cost",
        type=float,
        default=None,
        help="cost of a missed pneumonia relative to a false alarm (default: the bundle's)",
    )
    c.set_defaults(func=_calibrate)

    g = _in_place(
        sub, "gradcam-graph", "add the ONNX Grad-CAM graph to a bundle exported before it existed"
    )
    g.add_argument("--films", required=True, help="a folder of films to check the graph on")
    g.set_defaults(func=_gradcam_graph)
    p = _in_place(
        sub,
        "population-check",
        "fit the check that a film looks like an adult's, from its pixels",
        trained_on=True,
    )
    p.add_argument("--adults", required=True, help="a folder of adults' chest films")
    p.set_defaults(func=_population_check)
    m = _in_place(
        sub,
        "monitoring-reference",
        "write monitoring's reference (the validation films as uploads) into a bundle",
        trained_on=True,
    )
    m.set_defaults(func=_monitoring_reference)
    return parser


def _in_place(sub, name: str, help_text: str, trained_on: bool = False):
    """A command that adds a file to an existing bundle: --model, and --data-dir when it reads
    the folder the bundle was trained on."""
    parser = sub.add_parser(name, formatter_class=_HelpFormatter, help=help_text)
    parser.add_argument("--model", required=True, help="bundle folder (changed in place)")
    if trained_on:
        _add_data_dir(parser, "the Kaggle-layout folder the bundle was trained on")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    from engine.runtime import import_tensorflow

    import_tensorflow()  # first, so its start-up chatter is filtered (engine.runtime)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    args.func(args)


if __name__ == "__main__":
    main()
