"""How far the model input itself moves under the evaluation's invisible changes, for variants of
the preprocessing chain: the mean absolute change in gray levels of the 150x150 picture, over
validation films (the selection split). A chain that moves less gives the network less to react
to; this measures the input only, no model is involved.

    python -m benchmarks.chain_sensitivity [--every 7]
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from benchmarks.common import validation_split, write_result
from imaging import PreprocessingParams
from imaging.preprocess import enhance_grayscale, scale_to_unit
from training.robustness import perturbation_pairs


def blurred(sigma: float, before_clahe: bool):
    """The shipped chain with a Gaussian blur before or after CLAHE (a candidate, not shipped)."""

    def chain(gray: np.ndarray, params: PreprocessingParams) -> np.ndarray:
        if not before_clahe:
            return cv2.GaussianBlur(enhance_grayscale(gray, params), (0, 0), sigma)
        size = params.image_size
        small = cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA)
        small = cv2.medianBlur(cv2.GaussianBlur(small, (0, 0), sigma), params.median_ksize)
        grid = (params.clahe_tile_grid, params.clahe_tile_grid)
        return cv2.createCLAHE(params.clahe_clip_limit, grid).apply(small)

    return chain


VARIANTS = {
    "shipped chain (median 3, CLAHE 2.0 on 8x8)": (PreprocessingParams(), enhance_grayscale),
    "median 1 (off)": (PreprocessingParams(median_ksize=1), enhance_grayscale),
    "median 5": (PreprocessingParams(median_ksize=5), enhance_grayscale),
    "CLAHE clip 1.5": (PreprocessingParams(clahe_clip_limit=1.5), enhance_grayscale),
    "Gaussian blur 0.8 px after CLAHE": (PreprocessingParams(), blurred(0.8, False)),
    "Gaussian blur 0.8 px before CLAHE": (PreprocessingParams(), blurred(0.8, True)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--every", type=int, default=7, help="use every n-th validation film")
    parser.add_argument("--name", default="chain_sensitivity")
    args = parser.parse_args()
    val = validation_split()
    datas = [p.read_bytes() for p in val.paths[:: args.every]]
    rows = {}
    for name, (params, enhance) in VARIANTS.items():

        def chain(gray: np.ndarray, p: PreprocessingParams, enhance=enhance) -> np.ndarray:
            return scale_to_unit(enhance(gray, p), p)

        rng = np.random.default_rng(0)
        changes: dict[str, list[float]] = {}
        for data in datas:
            for kind, (a, b) in perturbation_pairs(data, params, rng, chain).items():
                changes.setdefault(kind, []).append(float(np.abs(a - b).mean() * 255))
        rows[name] = {kind: float(np.mean(v)) for kind, v in changes.items()}
    kinds = list(next(iter(rows.values())))
    md = [
        f"Mean |change| of the 150x150 input in gray levels, {len(datas)} validation films.",
        "",
        "| chain | " + " | ".join(kinds) + " |",
        "| --- |" + " --- |" * len(kinds),
    ]
    md += [f"| {n} | " + " | ".join(f"{r[k]:.3f}" for k in kinds) + " |" for n, r in rows.items()]
    write_result(args.name, {"films": len(datas), "variants": rows}, "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
