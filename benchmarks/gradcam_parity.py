"""The Grad-CAM graph against the reference on every dev-test film and the samples' simulated
uploads: the probability against model.onnx's, the map against TensorFlow's Grad-CAM on
model.keras, labels at the threshold. Export checks the same on 32 films; this is the whole set.

    python -m benchmarks.gradcam_parity [--model models/default]
"""

from __future__ import annotations

import argparse

import numpy as np
from tqdm import tqdm

from benchmarks.common import sample_uploads, write_result
from benchmarks.devdata import dev_data_root
from engine import ModelBundle, default_model_dir
from engine.gradcam import GradCam
from imaging import preprocess_bytes
from training.upload_simulation import simulate_upload


def inputs(params) -> dict[str, list[np.ndarray]]:
    """Dev-test films as files, and the samples as simulated uploads (3 each)."""
    rng = np.random.default_rng(0)
    test = sorted((dev_data_root() / "chest_xray" / "test").rglob("*.jpeg"))
    samples = sample_uploads()
    uploads = [simulate_upload(data, rng) for data in samples.values() for _ in range(3)]
    return {
        "dev-test films": [preprocess_bytes(p.read_bytes(), params) for p in test],
        "sample uploads (simulated)": [preprocess_bytes(d, params) for d in uploads],
    }


def compare(bundle: ModelBundle, reference: GradCam, tensors: list[np.ndarray]) -> dict:
    probability_diff, map_diff, correlations, flips = [], [], [], 0
    for tensor in tqdm(tensors, desc="parity", unit="film", leave=False):
        graph = bundle.run_gradcam(tensor)
        served = float(bundle.predict(tensor[None])[0])
        got = float(graph["probability"].reshape(-1)[0])
        cam, expected = graph[bundle.card.gradcam.graph_output], reference(tensor)
        probability_diff.append(abs(got - served))
        map_diff.append(float(np.abs(cam - expected).max()))
        if cam.std() > 0 and expected.std() > 0:
            correlations.append(float(np.corrcoef(cam.ravel(), expected.ravel())[0, 1]))
        flips += (got >= bundle.threshold) != (served >= bundle.threshold)
    return {
        "images": len(tensors),
        "probability_abs_diff_p99": float(np.percentile(probability_diff, 99)),
        "probability_abs_diff_max": float(max(probability_diff)),
        "label_flips": int(flips),
        "map_abs_diff_max": float(max(map_diff)),
        "map_correlation_min": float(min(correlations)),
        "maps_compared_by_correlation": len(correlations),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=str(default_model_dir()))
    args = parser.parse_args()
    bundle = ModelBundle.load(args.model)
    spec = bundle.card.gradcam
    if spec.graph is None:
        raise SystemExit("the bundle has no Grad-CAM graph (python -m training gradcam-graph)")
    reference = GradCam(bundle.keras_model(), spec, bundle.preprocessing.image_size)
    sets = {name: compare(bundle, reference, t) for name, t in inputs(bundle.preprocessing).items()}
    rows = [
        f"Model {bundle.version}: `{spec.graph}` against model.onnx (probability) and TensorFlow's "
        "Grad-CAM on model.keras (map), threshold "
        f"{bundle.threshold:.3f}.",
        "",
        "| inputs | images | |dp| p99 | |dp| max | label flips | map |diff| max | "
        "map correlation min |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in sets.items():
        rows.append(
            f"| {name} | {r['images']} | {r['probability_abs_diff_p99']:.1e} | "
            f"{r['probability_abs_diff_max']:.1e} | {r['label_flips']} | "
            f"{r['map_abs_diff_max']:.1e} | {r['map_correlation_min']:.6f} |"
        )
    write_result(
        "gradcam_parity",
        {"version": bundle.version, "threshold": bundle.threshold, "sets": sets},
        "\n".join(rows) + "\n",
    )


if __name__ == "__main__":
    main()
