"""Do the Grad-CAM maps look at the chest? For each sample upload: the share of heatmap mass inside
the central thorax box, and the correlation with the map of the same architecture with random
weights (a map that ignores the weights would correlate highly). Saves a contact sheet of overlays.

    python -m benchmarks.heatmaps [--model models/default]
"""

from __future__ import annotations

import argparse
import os

import cv2
import keras
import numpy as np

from benchmarks.common import REPO, write_result
from benchmarks.devdata import dev_data_root
from engine import Predictor, default_model_dir
from engine.gradcam import GradCam
from imaging import preprocess_file
from training.model import build_cnn

# The lungs and heart of a frontal chest film sit in roughly this central box (fractions of W, H).
THORAX_BOX = (0.15, 0.85, 0.10, 0.90)


def mass_inside(cam: np.ndarray, box=THORAX_BOX) -> float:
    h, w = 150, 150
    big = cv2.resize(cam.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC).clip(0, None)
    x0, x1, y0, y1 = (int(box[0] * w), int(box[1] * w), int(box[2] * h), int(box[3] * h))
    total = float(big.sum())
    return float(big[y0:y1, x0:x1].sum() / total) if total > 0 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=str(default_model_dir()))
    parser.add_argument("--sheet", default=str(REPO / "docs" / "heatmaps.png"))
    args = parser.parse_args()
    predictor = Predictor.from_directory(args.model)
    params = predictor.bundle.preprocessing
    keras.utils.set_random_seed(0)  # the same random-weight control on every run
    random_cam = GradCam(
        build_cnn(params.image_size), predictor.bundle.card.gradcam, params.image_size
    )
    rows, tiles = [], []
    for path in sorted((dev_data_root() / "samples").iterdir()):
        result = predictor.predict(path.read_bytes(), heatmap=True)
        tensor = preprocess_file(path, params)
        positive = result.label == predictor.bundle.labels[1]
        cam = predictor.gradcam(tensor, explain_positive=positive)
        rand = random_cam(tensor, explain_positive=positive)
        corr = (
            float(np.corrcoef(cam.ravel(), rand.ravel())[0, 1])
            if cam.std() > 0 and rand.std() > 0
            else float("nan")
        )
        truth = "PNEUMONIA" if path.name.startswith("pneumonia") else "NORMAL"
        rows.append(
            {
                "file": path.name,
                "true_label": truth,
                "probability": round(result.probability, 4),
                "label": result.label,
                "mass_in_thorax_box": round(mass_inside(cam), 3),
                "corr_with_random_weights": round(corr, 3),
            }
        )
        tile = cv2.resize(result.heatmap.overlay, (256, 256), interpolation=cv2.INTER_AREA)
        caption = f"{truth[:4]} p={result.probability:.2f}"
        cv2.putText(tile, caption, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
        tiles.append(tile)
    while len(tiles) % 4:
        tiles.append(np.zeros_like(tiles[0]))
    sheet = np.vstack([np.hstack(tiles[i : i + 4]) for i in range(0, len(tiles), 4)])
    os.makedirs(os.path.dirname(args.sheet), exist_ok=True)
    cv2.imwrite(args.sheet, sheet)
    pneu = [r for r in rows if r["true_label"] == "PNEUMONIA"]
    summary = {
        "thorax_box": THORAX_BOX,
        "pneumonia_samples_mean_mass_in_thorax_box": round(
            float(np.nanmean([r["mass_in_thorax_box"] for r in pneu])), 3
        ),
        "empty_maps": [r["file"] for r in rows if np.isnan(r["mass_in_thorax_box"])],
        "box_share_of_image_area": round((0.85 - 0.15) * (0.90 - 0.10), 3),
        "mean_corr_with_random_weights": round(
            float(np.nanmean([r["corr_with_random_weights"] for r in rows])), 3
        ),
        "samples": rows,
    }
    md = [
        "| file | truth | p | label | mass in thorax box | corr. with random weights |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    md += [
        f"| {r['file']} | {r['true_label']} | {r['probability']} | {r['label']} | "
        f"{r['mass_in_thorax_box']} | {r['corr_with_random_weights']} |"
        for r in rows
    ]
    md += [
        "",
        f"Pneumonia samples: mean share of heatmap mass in the central box "
        f"{summary['pneumonia_samples_mean_mass_in_thorax_box']} over the non-empty maps (the "
        f"box is {summary['box_share_of_image_area']:.0%} of the image). Empty maps (Grad-CAM "
        f"found no region raising the label's score): {len(summary['empty_maps'])} of "
        f"{len(rows)}. Mean correlation with a "
        f"random-weight model's map: {summary['mean_corr_with_random_weights']}.",
        "",
    ]
    write_result("heatmaps", summary, "\n".join(md))


if __name__ == "__main__":
    main()
