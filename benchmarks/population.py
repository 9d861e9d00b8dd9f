"""Films from inside and outside the population through the service's engine, with the card's
population check (the DICOM header's age and the pixels):

- the 62 adults' films of the development folder (JPEG, no header; the check was fitted on them,
  so their out-of-fold rate is the card's, and this row is in-sample);
- a real adult CR DICOM (RG1_UNCR.dcm from pydicom-data, a 64-year-old), and the same film sent
  as a PNG export of its pixels (no header: the pixels alone must say "adult");
- the children's dev-test films, as files and as simulated uploads; the validation children as
  simulated uploads; the full-resolution samples as files and as simulated uploads.

    python -m benchmarks.population [--model DIR]

Writes benchmarks/results/population.{json,md}: answered, refused, warned, the labels, and whether
the check changed any probability (it must not: it only adds a warning).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import RESULTS, write_result
from benchmarks.devdata import dev_data_root
from engine import Predictor, default_model_dir
from engine.population import OutsidePopulationError
from imaging import ImageError, NotChestXrayError, decode_upload, is_image_file
from training.data import load_splits
from training.population_check import split_settings
from training.upload_simulation import simulate_upload

UPLOADS_PER_FILM = 2
UPLOADS_PER_SAMPLE = 4
COLUMNS = [
    "films",
    "answered",
    "answered_NORMAL",
    "answered_PNEUMONIA",
    "warned",
    "warned_rate",
    "refused_not_chest_xray",
    "refused_outside_population",
    "unreadable",
    "population_score_median",
]


def outcomes(predictor: Predictor, films: list[bytes]) -> tuple[dict, list[float], list[float]]:
    """Counts of what the engine did, the probabilities of the answered films and their
    population scores."""
    counts: Counter = Counter()
    scores, probabilities = [], []
    for data in films:
        try:
            result = predictor.predict(data, heatmap=False)
        except NotChestXrayError:
            counts["refused_not_chest_xray"] += 1
            continue
        except OutsidePopulationError:
            counts["refused_outside_population"] += 1
            continue
        except ImageError:
            counts["unreadable"] += 1
            continue
        counts["answered"] += 1
        counts[f"answered_{result.label}"] += 1
        counts["warned"] += bool(result.warnings)
        probabilities.append(result.probability)
        if result.population_score is not None:
            scores.append(result.population_score)
    row = {"films": len(films), **dict(sorted(counts.items()))}
    row["warned_rate"] = round(counts["warned"] / max(1, counts["answered"]), 4)
    if scores:
        row["population_score_median"] = round(float(np.median(scores)), 4)
    return row, probabilities, scores


def draw(films: dict[str, list[bytes]], scores: dict[str, list[float]], threshold: float) -> None:
    """The score histograms of children and adults, and the children's films the check flags
    (what a reader would want to see: do they look like young children?)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 3.2))
    bins = np.linspace(0, 1, 41)
    for name, values in scores.items():
        if len(values) > 1 and "PNG export" not in name and "full-resolution" not in name:
            axis.hist(values, bins=bins, histtype="step", density=True, linewidth=1.4, label=name)
    axis.axvline(threshold, color="black", linestyle="--", linewidth=1, label="threshold")
    axis.set_yscale("log")
    axis.set_xlabel("population score (P(adult) from the pixels)")
    axis.set_ylabel("density (log)")
    axis.legend(fontsize=6, loc="upper center")
    figure.tight_layout()
    figure.savefig(RESULTS / "population_scores.png", dpi=120)
    plt.close(figure)
    name = "children's dev-test films"
    flagged = [i for i, s in enumerate(scores[name]) if s >= threshold]
    thumbs = []
    for index in flagged[:8]:
        gray = cv2.imdecode(np.frombuffer(films[name][index], np.uint8), cv2.IMREAD_GRAYSCALE)
        thumb = cv2.resize(gray, (200, 200), interpolation=cv2.INTER_AREA)
        cv2.putText(thumb, f"{scores[name][index]:.2f}", (6, 190), 0, 0.6, 255, 2)
        thumbs.append(thumb)
    if thumbs:
        cv2.imwrite(str(RESULTS / "population_flagged_children.png"), np.hstack(thumbs))


def uploads(paths: list[Path], per_film: int, seed: int) -> list[bytes]:
    films = []
    for index, path in enumerate(paths):
        rng = np.random.default_rng([seed, index])
        data = path.read_bytes()
        films += [simulate_upload(data, rng) for _ in range(per_film)]
    return films


def png_export(dicom: bytes, predictor: Predictor) -> bytes:
    """The DICOM's displayed pixels as a PNG: what a viewer's "export image" gives."""
    _, gray = decode_upload(dicom, predictor.bundle.preprocessing)
    return cv2.imencode(".png", gray)[1].tobytes()


def groups(predictor: Predictor) -> dict[str, list[bytes]]:
    from pydicom.data import get_testdata_file

    root = dev_data_root()
    card = predictor.bundle.card
    val_fraction, seed = split_settings(card)
    splits = load_splits(root / "chest_xray", val_fraction, seed=seed)
    adult_cr = Path(get_testdata_file("RG1_UNCR.dcm")).read_bytes()
    samples = sorted(p for p in (root / "samples").iterdir() if is_image_file(p))
    adults = sorted(p for p in (root / "other" / "adult_chest").rglob("*") if is_image_file(p))
    return {
        "adults' films (other/adult_chest, JPEG; in-sample)": [p.read_bytes() for p in adults],
        "adult CR DICOM (RG1_UNCR.dcm)": [adult_cr],
        "adult CR as a PNG export (pixels only)": [png_export(adult_cr, predictor)],
        "children's dev-test films": [p.read_bytes() for p in splits.test.paths],
        f"children's dev-test, {UPLOADS_PER_FILM} simulated uploads each": uploads(
            splits.test.paths, UPLOADS_PER_FILM, 11
        ),
        f"children's validation, {UPLOADS_PER_FILM} simulated uploads each": uploads(
            splits.val.paths, UPLOADS_PER_FILM, 12
        ),
        "samples (full-resolution files)": [p.read_bytes() for p in samples],
        f"samples, {UPLOADS_PER_SAMPLE} simulated uploads each": uploads(
            samples, UPLOADS_PER_SAMPLE, 13
        ),
    }


def check_cost(predictor: Predictor, film: bytes) -> dict:
    """Time of the population check itself (the dot product and its sentence) per answer, and of
    the record's extra figures (gray-level statistics, feature summary), on one real upload."""
    from benchmarks.common import summarize_ms, time_calls
    from imaging import decode_upload, gray_statistics, preprocess_bytes

    tensor = preprocess_bytes(film, predictor.bundle.preprocessing)
    outputs = predictor.bundle.run(tensor[np.newaxis])
    gray = decode_upload(film, predictor.bundle.preprocessing)[1]
    return {
        "population_check": summarize_ms(
            time_calls(
                lambda: predictor.population_warnings(None, predictor.population_score(outputs)),
                2000,
            )
        ),
        "gray_statistics": summarize_ms(time_calls(lambda: gray_statistics(gray), 500)),
        "feature_summary": summarize_ms(
            time_calls(lambda: predictor.feature_summary(outputs), 2000)
        ),
        "film": f"{gray.shape[1]}x{gray.shape[0]} decoded",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=str(default_model_dir()))
    args = parser.parse_args()
    result: dict = {}
    films = None
    probabilities: dict[str, dict[str, list[float]]] = {}
    scores: dict[str, list[float]] = {}
    for check in ("warn", "refuse", "off"):
        predictor = Predictor.from_directory(
            args.model, gradcam_enabled=False, population_check=check
        )
        films = films or groups(predictor)
        result[check], probabilities[check] = {}, {}
        for name, group in films.items():
            row, probabilities[check][name], found = outcomes(predictor, group)
            result[check][name] = row
            if check == "warn":
                scores[name] = found
        result["model_version"] = predictor.bundle.version
        pixel_check = predictor.bundle.card.population.check
        result["threshold"] = pixel_check.threshold if pixel_check else None
        result["card_rates"] = pixel_check.rates if pixel_check else None
    from benchmarks.http_load import bench_upload

    warn = Predictor.from_directory(args.model, gradcam_enabled=False, population_check="warn")
    result["cost_ms"] = check_cost(warn, bench_upload()[0])
    result["probabilities_identical_warn_vs_off"] = all(
        probabilities["warn"][name] == probabilities["off"][name] for name in films
    )
    md = [
        f"Model {result['model_version']}; through the engine (what `/predict` runs). "
        f"Population check threshold {result['threshold']:.3f}; probabilities with the check "
        f"(warn) and without it (off) identical: {result['probabilities_identical_warn_vs_off']}.",
        "",
    ]
    cost = result["cost_ms"]
    md += [
        f"Cost per answer (in-process, {cost['film']} bench JPEG): the population check "
        f"{cost['population_check']['median_ms']:.4f} ms median; the record's gray-level "
        f"statistics {cost['gray_statistics']['median_ms']:.3f} ms and feature summary "
        f"{cost['feature_summary']['median_ms']:.4f} ms.",
        "",
    ]
    if result["card_rates"]:
        rates = result["card_rates"]
        md += [
            f"Out of fold (the card): {100 * rates['adult_films_flagged_out_of_fold']:.1f}% of the "
            f"{rates['adult_films']} adults' films flagged as files, "
            f"{100 * rates['adults_flagged_out_of_fold']:.1f}% of them with their "
            f"{rates['adult_variants_per_film']} random variants each.",
            "",
        ]
    for check in ("warn", "refuse", "off"):
        md += [
            f"POPULATION_CHECK={check}:",
            "",
            "| group | " + " | ".join(COLUMNS) + " |",
            "| --- " * (len(COLUMNS) + 1) + "|",
        ]
        for name, row in result[check].items():
            md.append(f"| {name} | " + " | ".join(str(row.get(c, 0)) for c in COLUMNS) + " |")
        md.append("")
    if result["threshold"] is not None:
        draw(films, scores, result["threshold"])
        md += [
            "![Population scores](population_scores.png)",
            "",
            "The children's dev-test films the check flags (score in the corner):",
            "",
            "![Flagged children's films](population_flagged_children.png)",
            "",
        ]
    write_result("population", result, "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
