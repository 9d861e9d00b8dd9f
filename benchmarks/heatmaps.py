"""Do the Grad-CAM maps look at the chest? On the dev-test pneumonia films, for the shipped model
and the previous one (same run): how often the map's peak lies on the grid's outer ring (the
film's edge) and the median share of the map inside the central thorax box. The sanity check:
the same architecture with random weights gives unrelated maps. Saves a contact sheet of the
sample uploads' overlays (docs/heatmaps.png).

    python -m benchmarks.heatmaps [--model models/default]
"""

from __future__ import annotations

import argparse
import os

import cv2
import numpy as np

from benchmarks.common import REPO, write_result
from benchmarks.devdata import dev_data_root
from benchmarks.previous import previous_bundle
from engine import ModelBundle, Predictor, default_model_dir
from engine.gradcam import GradCam
from engine.runtime import import_keras
from imaging import preprocess_file
from training.data import list_split
from training.heatmap_stats import summarize_maps
from training.model import build_cnn
from training.serving import build_serving_graph


def test_split_maps(bundle: ModelBundle) -> dict:
    """Summary of the maps on the dev-test pneumonia films, each explaining the service's label."""
    predictor = Predictor(bundle, load_gradcam=True, refuse_out_of_distribution=False)
    files = list_split(dev_data_root() / "chest_xray", "test")
    maps = []
    for path, label in zip(files.paths, files.labels, strict=True):
        if label == 1:
            result = predictor.predict(path.read_bytes(), heatmap=True)
            maps.append(result.heatmap.grid)
    return summarize_maps(maps)


def random_weights_control(bundle: ModelBundle) -> GradCam:
    """Grad-CAM over the same served graph with untrained members."""
    keras = import_keras()
    keras.utils.set_random_seed(0)  # the same control on every run
    card = bundle.card
    members = [build_cnn(card.preprocessing.image_size) for _ in card.gradcam.members]
    blocks = tuple(
        int(name.rsplit("block", 1)[1].split("_")[0])
        for name in card.gradcam.members[0].feature_layers
    )
    graph = build_serving_graph(members, gradcam_blocks=blocks)
    return GradCam(graph.model, graph.gradcam, card.preprocessing.image_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=str(default_model_dir()))
    parser.add_argument("--sheet", default=str(REPO / "docs" / "heatmaps.png"))
    args = parser.parse_args()
    bundle = ModelBundle.load(args.model)
    predictor = Predictor(bundle, load_gradcam=True, refuse_out_of_distribution=False)
    random_cam = random_weights_control(bundle)
    params = bundle.preprocessing
    rows, tiles = [], []
    for path in sorted((dev_data_root() / "samples").iterdir()):
        result = predictor.predict(path.read_bytes(), heatmap=True)
        cam = result.heatmap.grid
        rand = random_cam(preprocess_file(path, params))
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

    old_dir = previous_bundle()
    test_maps = {"current": test_split_maps(bundle)}
    if old_dir:
        test_maps["previous"] = test_split_maps(ModelBundle.load(old_dir))
    correlation = float(np.nanmean([r["corr_with_random_weights"] for r in rows]))
    summary = {
        "dev_test_pneumonia_maps": test_maps,
        "mean_corr_with_random_weights_samples": round(correlation, 3),
        "samples": rows,
    }
    md = [
        "Dev-test pneumonia films (the service's maps of pneumonia evidence):",
        "",
        "| model | maps | empty | peak on the outer ring of a 10x10 grid | same, on the map's own "
        "grid | median mass in the thorax box |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, s in test_maps.items():
        md.append(
            f"| {name} | {s['maps']} | {s['empty_maps']} | {s['peak_on_outer_ring_share']:.1%} "
            f"(with empty maps: {s['peak_on_ring_or_empty_share']:.1%}) | "
            f"{s['peak_on_own_grid_ring_share']:.1%} | {s['median_mass_in_thorax_box']:.3f} |"
        )
    md += [
        "",
        f"Thorax box: x 15-85%, y 10-90% of the image. Sanity check on the 16 samples: mean "
        f"correlation with the same graph's map under random weights {correlation:.3f}.",
        "",
        "| file | truth | p | label | corr. with random weights |",
        "| --- | --- | --- | --- | --- |",
    ]
    md += [
        f"| {r['file']} | {r['true_label']} | {r['probability']} | {r['label']} | "
        f"{r['corr_with_random_weights']} |"
        for r in rows
    ]
    write_result("heatmaps", summary, "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
