"""Which blocks should Grad-CAM read? For one bundle, on the validation split's pneumonia films
(the selection split; the test split is never read), each block combination's maps: the share
whose peak lies on the outer ring of a 10x10 grid (and of the map's own grid), and the median
share of the map inside the thorax box.

    python -m benchmarks.gradcam_layers [--model models/default]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.common import validation_split, write_result
from engine import ModelBundle, default_model_dir
from engine.card import GradCamMember, GradCamSpec
from engine.gradcam import GradCam
from training.evaluate import read_films
from training.heatmap_stats import summarize_maps
from training.model import block_output

COMBINATIONS = ((5,), (4,), (4, 5), (3, 4, 5), (4, 5, 6), (5, 6), (3, 4), (3, 5))
METHODS = ("gradcam", "hirescam")


def spec_for(bundle: ModelBundle, blocks: tuple[int, ...], method: str) -> GradCamSpec:
    """The bundle's Grad-CAM spec with other feature layers (m{k}_<block output>)."""
    model = bundle.keras_model()
    members = tuple(
        GradCamMember(
            feature_layers=tuple(f"m{k}_{block_output(b)}" for b in blocks),
            pooled_layer=m.pooled_layer,
            dense_layer=m.dense_layer,
        )
        for k, m in enumerate(bundle.card.gradcam.members)
    )
    side = max(model.get_layer(name).output.shape[1] for name in members[0].feature_layers)
    return GradCamSpec(members=members, grid=(side, side), method=method)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=str(default_model_dir()))
    parser.add_argument("--name", default="gradcam_layers")
    args = parser.parse_args()
    val = validation_split()
    sick = [p for p, label in zip(val.paths, val.labels, strict=True) if label == 1]
    bundle = ModelBundle.load(Path(args.model))
    films = read_films(sick, bundle, desc="validation pneumonia films")
    rows = []
    for method in METHODS:
        for blocks in COMBINATIONS:
            spec = spec_for(bundle, blocks, method)
            cam = GradCam(bundle.keras_model(), spec, bundle.preprocessing.image_size)
            maps = [cam(t) for t in films.tensors]
            rows.append(
                {
                    "method": method,
                    "blocks": list(blocks),
                    "grid": list(spec.grid),
                    **summarize_maps(maps),
                }
            )
    shipped = " x ".join(bundle.card.gradcam.members[0].feature_layers)
    md = [
        f"Bundle {bundle.version}; {len(films.tensors)} validation pneumonia films; maps explain "
        f"pneumonia evidence (the card's layers: {shipped}, {bundle.card.gradcam.method}).",
        "",
        "| method | blocks (maps multiplied) | grid | empty | peak on the 10x10 ring | on the own "
        "grid's ring | median mass in the thorax box |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        md.append(
            f"| {r['method']} | {' x '.join(map(str, r['blocks']))} | "
            f"{r['grid'][0]}x{r['grid'][1]} | "
            f"{r['empty_maps']} | {r['peak_on_outer_ring_share']:.1%} | "
            f"{r['peak_on_own_grid_ring_share']:.1%} | {r['median_mass_in_thorax_box']:.3f} |"
        )
    result = {"model_version": bundle.version, "combinations": rows}
    write_result(args.name, result, "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
