"""Does the drift alarm ring for films that changed, and stay quiet for films that did not?

Streams through the engine, each record made as the service makes it, judged in windows of
WINDOW answers against the bundle's monitoring reference (the validation films as uploads):

- unshifted: the children's dev-test films as simulated uploads (4 each), in random windows,
  to state the false-alarm rate; and the same with four PNEUMONIA films for every NORMAL one (a
  change of case mix, which is not drift);
- shifted, each after a full window of unshifted answers: the adults' films (as files and as
  simulated uploads), and the children's films through other post-processing (gamma 1.6,
  contrast flattened to half, JPEG quality 15): how many shifted films until the alarm.

    python -m benchmarks.drift [--model DIR]

Writes benchmarks/results/drift.{json,md}.
"""

from __future__ import annotations

import argparse
import uuid

import cv2
import numpy as np
from tqdm import tqdm

from app.monitoring.drift import drift_report
from benchmarks.common import write_result
from benchmarks.devdata import dev_data_root
from engine import Predictor, default_model_dir
from engine.records.rows import answer_row
from imaging import ImageError, decode_grayscale, is_image_file, probe_image
from training.data import list_split
from training.upload_simulation import simulate_upload

WINDOW = 100
RANDOM_WINDOWS = 200
UPLOADS = 4


def records(predictor: Predictor, films: list[bytes], desc: str) -> list[dict]:
    out = []
    for data in tqdm(films, desc=desc, leave=False):
        try:
            result = predictor.predict(data, heatmap=False)
        except ImageError:
            continue
        out.append(answer_row(result, uuid.uuid4().hex, "bench", predictor.bundle.version, data))
    return out


def processed(data: bytes, how: str) -> bytes:
    gray = decode_grayscale(data, probe_image(data))
    if how == "gamma 1.6":
        lut = (255.0 * (np.arange(256) / 255.0) ** 1.6).astype(np.uint8)
        return cv2.imencode(".png", cv2.LUT(gray, lut))[1].tobytes()
    if how == "contrast halved":
        flat = (gray.astype(np.float32) - 128) * 0.5 + 128
        return cv2.imencode(".png", flat.astype(np.uint8))[1].tobytes()
    if how == "JPEG quality 15":
        return cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, 15])[1].tobytes()
    raise ValueError(how)


def alarm_rate(stream: list[dict], predictor: Predictor, rng: np.random.Generator) -> dict:
    positive = predictor.bundle.labels[1]
    scores = []
    for _ in range(RANDOM_WINDOWS):
        pick = rng.choice(len(stream), WINDOW, replace=False)
        report = drift_report([stream[i] for i in pick], predictor.reference, positive)
        scores.append(report["score"])
    scores = np.asarray(scores)
    threshold = report["threshold"]
    return {
        "windows": RANDOM_WINDOWS,
        "window": WINDOW,
        "alarms": int((scores >= threshold).sum()),
        "false_alarm_rate": float((scores >= threshold).mean()),
        "score_median": float(np.median(scores)),
        "score_max": float(scores.max()),
    }


def films_until_alarm(base: list[dict], shifted: list[dict], predictor: Predictor) -> dict:
    """Windows ending 1, 2, ... shifted films after a full window of unshifted answers."""
    positive = predictor.bundle.labels[1]
    history = base[-WINDOW:]
    for count in range(1, len(shifted) + 1):
        window = (history + shifted[:count])[-WINDOW:]
        report = drift_report(window, predictor.reference, positive)
        if report["alarm"]:
            return {"shifted_films": len(shifted), "alarm_after": count, "score": report["score"]}
    return {"shifted_films": len(shifted), "alarm_after": None, "score": report["score"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=str(default_model_dir()))
    args = parser.parse_args()
    predictor = Predictor.from_directory(args.model, gradcam_enabled=False)
    if predictor.reference is None:
        raise SystemExit("the bundle has no monitoring reference (training monitoring-reference)")
    root = dev_data_root()
    rng = np.random.default_rng(0)
    test = list_split(root / "chest_xray", "test")
    originals = [p.read_bytes() for p in test.paths]
    uploads = [simulate_upload(d, rng) for d in originals for _ in range(UPLOADS)]
    labels = np.repeat(np.asarray(test.labels), UPLOADS)
    children = records(predictor, uploads, "dev-test uploads")
    result: dict = {"model_version": predictor.bundle.version, "window": WINDOW}
    result["unshifted"] = alarm_rate(children, predictor, rng)
    sick = [r for r, y in zip(children, labels, strict=False) if y == 1]
    well = [r for r, y in zip(children, labels, strict=False) if y == 0]
    mixed = sick[: 4 * (len(well) // 4)] + well[: len(well) // 4]
    result["four_pneumonia_to_one_normal"] = alarm_rate(mixed, predictor, rng)
    order = rng.permutation(len(children))
    base = [children[i] for i in order]
    adults_dir = root / "other" / "adult_chest"
    adults = [p.read_bytes() for p in sorted(adults_dir.rglob("*")) if is_image_file(p)]
    adult_uploads = [simulate_upload(d, rng) for d in adults]
    shifted = {
        "adults' films (files)": records(predictor, adults, "adults"),
        "adults' films (simulated uploads)": records(predictor, adult_uploads, "adult uploads"),
    }
    sample = [originals[i] for i in rng.permutation(len(originals))[:150]]
    for how in ("gamma 1.6", "contrast halved", "JPEG quality 15"):
        shifted[f"children, {how}"] = records(predictor, [processed(d, how) for d in sample], how)
    result["shifted"] = {
        name: films_until_alarm(base, stream, predictor) for name, stream in shifted.items()
    }
    unshifted, mix = result["unshifted"], result["four_pneumonia_to_one_normal"]
    md = [
        f"Model {result['model_version']}; windows of {WINDOW} answers against the bundle's "
        "monitoring reference, through the engine.",
        "",
        "| unshifted stream | windows | alarms | false-alarm rate | median score | max score |",
        "| --- | --- | --- | --- | --- | --- |",
        *(
            f"| {name} | {r['windows']} | {r['alarms']} | {100 * r['false_alarm_rate']:.1f}% | "
            f"{r['score_median']:.2f} | {r['score_max']:.2f} |"
            for name, r in (
                ("children's dev-test, simulated uploads", unshifted),
                ("the same, 4 PNEUMONIA to 1 NORMAL", mix),
            )
        ),
        "",
        "| shifted stream (after a window of unshifted answers) | films | alarm after | score |",
        "| --- | --- | --- | --- |",
        *(
            f"| {name} | {r['shifted_films']} | "
            f"{r['alarm_after'] if r['alarm_after'] else 'no alarm'} | {r['score']:.2f} |"
            for name, r in result["shifted"].items()
        ),
        "",
    ]
    write_result("drift", result, "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
