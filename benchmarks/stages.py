"""Where the time goes for one upload, stage by stage, for the shipped bundle and the previous one
(same run); ONNX Runtime against the seed's Keras `model.predict`; FLOPs per image against the
machine's float32 peak; and decoding a 2500x2000 12-bit DICOM (uncompressed, JPEG 2000) beside
the same film as JPEG.

    python -m benchmarks.stages [--model models/default] [--repeats 30]
"""

from __future__ import annotations

import argparse
import base64
import os
import time

import numpy as np

from benchmarks.common import (
    machine,
    processor_line,
    sample_uploads,
    summarize_ms,
    time_calls,
    write_result,
)
from benchmarks.previous import previous_bundle
from engine import Predictor, default_model_dir
from engine.bundle import onnx_session
from engine.overlay import encode_png
from engine.runtime import configure_tensorflow
from imaging import PreprocessingParams, decode_upload, preprocess_grayscale

STAGES = ("decode", "preprocess", "inference", "guard", "gradcam", "overlay", "encode", "total")


def conv_dense_flops(model) -> int:
    """Multiply-adds x2 of every Conv2D and Dense layer for one image (all members)."""
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            c_in = layer.input.shape[-1]
            total += 2 * h * w * c_out * kh * kw * c_in
        elif kind == "Dense":
            total += 2 * layer.input.shape[-1] * layer.units
    return int(total)


def matmul_peak_gflops(threads: int, n: int = 2048, repeats: int = 10) -> float:
    """Best observed float32 matmul rate with numpy's BLAS on `threads` threads."""
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = np.random.default_rng(1).random((n, n), dtype=np.float32)
    with threadpool_limits(threads):
        best = min(time_calls(lambda: a @ b, repeats, warmup=2))
    return 2 * n**3 / best / 1e9


def stage_times(predictor: Predictor, uploads: dict[str, bytes], repeats: int) -> dict:
    """Median and p95 of every stage over every upload, as the service runs them."""
    stages: dict[str, list[float]] = {k: [] for k in STAGES}
    for data in uploads.values():
        for _ in range(max(3, repeats // 3)):
            result = predictor.predict(data, heatmap=True)
            started = time.perf_counter()
            base64.b64encode(encode_png(result.heatmap.overlay))
            encode_s = time.perf_counter() - started
            for key, ms in result.timings_ms.items():
                stages[key].append(ms / 1000)
            stages["encode"].append(encode_s)
            stages["total"][-1] += encode_s
    return {k: summarize_ms(v) for k, v in stages.items() if v}


def dicom_decode_times(repeats: int) -> dict:
    """A 2500x2000 12-bit film: uncompressed DICOM, JPEG 2000 DICOM, and the same film as JPEG."""
    import cv2

    from tests.dicom_files import grayscale_dicom
    from tests.images import synthetic_film

    film = synthetic_film(0, 2500, 2000)
    params = PreprocessingParams()
    files = {
        "DICOM 12-bit uncompressed": grayscale_dicom(film, bits_stored=12),
        "DICOM 12-bit JPEG 2000 lossless": grayscale_dicom(
            film, bits_stored=12, syntax="1.2.840.10008.1.2.4.90"
        ),
        "JPEG quality 92 (reduced-scale decode)": cv2.imencode(
            ".jpg", film, [cv2.IMWRITE_JPEG_QUALITY, 92]
        )[1].tobytes(),
    }
    return {
        name: {
            "bytes": len(data),
            **summarize_ms(time_calls(lambda d=data: decode_upload(d, params), repeats, 2)),
        }
        for name, data in files.items()
    }


def bundle_report(
    model_dir, uploads: dict[str, bytes], repeats: int, gradcam_backend: str = "onnx"
) -> dict:
    """A bundle's stages as served; gradcam_backend="keras" is the serving path before the
    Grad-CAM graph (TensorFlow beside ONNX), the same for a bundle that has no graph."""
    predictor = Predictor.from_directory(model_dir, onnx_threads=1, gradcam_backend=gradcam_backend)
    params = predictor.bundle.preprocessing
    tensors = [preprocess_grayscale(decode_upload(d, params)[1], params) for d in uploads.values()]
    onnx = summarize_ms(
        [t for x in tensors for t in time_calls(lambda x=x: predictor.bundle.run(x[None]), 20, 3)]
    )
    size = sum(p.stat().st_size for p in predictor.bundle.directory.iterdir() if p.is_file())
    return {
        "version": predictor.bundle.version,
        "gradcam": "ONNX graph" if predictor.gradcam_in_graph else "Keras (TensorFlow)",
        "members": len(predictor.bundle.card.gradcam.members),
        "bundle_mb": round(size / 2**20, 2),
        "stages": stage_times(predictor, uploads, repeats),
        "onnx_per_image": onnx,
        "flops_per_image": conv_dense_flops(predictor.bundle.keras_model()),
        "predictor": predictor,
        "tensors": tensors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=str(default_model_dir()))
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    configure_tensorflow(1)
    uploads = sample_uploads()
    current = bundle_report(args.model, uploads, args.repeats)
    keras_path = bundle_report(args.model, uploads, args.repeats, gradcam_backend="keras")
    keras_path.pop("predictor"), keras_path.pop("tensors")
    old_dir = previous_bundle()
    previous = bundle_report(old_dir, uploads, args.repeats) if old_dir else None

    # The seed's way: the same preprocessing, then Keras model.predict one image at a time.
    predictor, tensors = current.pop("predictor"), current.pop("tensors")
    model = predictor.bundle.keras_model()
    keras_s = summarize_ms(
        [
            t
            for x in tensors
            for t in time_calls(lambda x=x: model.predict(x[None], verbose=0), 5, 1)
        ]
    )
    flops = current["flops_per_image"]
    peak_1, peak = matmul_peak_gflops(1), matmul_peak_gflops(os.cpu_count() or 1)
    onnx_gflops = flops / (current["onnx_per_image"]["median_ms"] / 1000) / 1e9
    batch = np.stack((tensors * 3)[:32])
    two = onnx_session(predictor.bundle.directory / "model.onnx", intra_op_threads=2)
    name_in = predictor.bundle.card.input.name
    batch2 = summarize_ms(time_calls(lambda: two.run(None, {name_in: batch}), 10, 2))
    batch_gflops = flops * 32 / (batch2["median_ms"] / 1000) / 1e9
    if previous:
        previous.pop("predictor"), previous.pop("tensors")
    result = {
        "machine": machine(),
        "uploads": {k: f"{len(v)} bytes" for k, v in uploads.items()},
        "current": current,
        "current_keras_gradcam": keras_path,
        "previous": previous,
        "seed_keras_predict_per_image": keras_s,
        "onnx_speedup_vs_seed": round(
            keras_s["median_ms"] / current["onnx_per_image"]["median_ms"], 1
        ),
        "matmul_peak_gflops_1thread": round(peak_1, 1),
        "matmul_peak_gflops_all_cores": round(peak, 1),
        "onnx_batch1_1thread_gflops": round(onnx_gflops, 2),
        "onnx_batch32_2threads": batch2,
        "onnx_batch32_2threads_gflops": round(batch_gflops, 2),
        "dicom_decode": dicom_decode_times(max(5, args.repeats // 3)),
    }
    names = [("current", current), ("current", keras_path)]
    names += [("previous", previous)] if previous else []
    header = " | ".join(
        f"{n} {r['version']} ({r['members']} member(s)), Grad-CAM: {r['gradcam']}" for n, r in names
    )
    rows = [
        f"| stage (median ms over the sample uploads) | {header} |",
        "| --- |" + " --- |" * len(names),
    ]
    for stage in STAGES:
        cells = [
            f"{r['stages'][stage]['median_ms']:.2f}" if stage in r["stages"] else "-"
            for _, r in names
        ]
        rows.append(f"| {stage} | " + " | ".join(cells) + " |")
    rows.append(
        "| ONNX Runtime, 1 image, 1 thread | "
        + " | ".join(f"{r['onnx_per_image']['median_ms']:.2f}" for _, r in names)
        + " |"
    )
    rows.append("| bundle size (MB) | " + " | ".join(f"{r['bundle_mb']}" for _, r in names) + " |")
    rows.append(
        "| FLOPs per image (M) | "
        + " | ".join(f"{r['flops_per_image'] / 1e6:.0f}" for _, r in names)
        + " |"
    )
    rows += [
        "",
        "With the ONNX Grad-CAM graph there is no gradcam stage: the map comes out of the "
        "inference call with the answer. With Keras, Grad-CAM runs on TensorFlow beside the "
        "ONNX call and the guard, so the stages add up to more than the total. A prediction "
        "alone runs ONNX on every core (ONNX_THREADS_ALONE).",
        "",
        "| comparison | value |",
        "| --- | --- |",
        f"| seed-style Keras `model.predict`, 1 image, median | {keras_s['median_ms']:.2f} ms |",
        f"| ONNX speed-up over the seed's way (same run) | {result['onnx_speedup_vs_seed']}x |",
        f"| processor | {processor_line(result['machine'])} |",
        f"| float32 matmul peak (numpy 2048^2), 1 thread / all cores | {peak_1:.1f} / "
        f"{peak:.1f} GFLOP/s |",
        f"| ONNX batch 1, 1 thread: achieved | {onnx_gflops:.1f} GFLOP/s "
        f"({onnx_gflops / peak_1:.0%} of the 1-thread peak) |",
        f"| ONNX batch 32, 2 threads: achieved | {batch_gflops:.1f} GFLOP/s "
        f"({batch_gflops / peak:.0%} of the all-core peak) |",
        "",
        "| decode a 2500x2000 film | bytes | median ms | p95 ms |",
        "| --- | --- | --- | --- |",
    ]
    rows += [
        f"| {name} | {d['bytes']} | {d['median_ms']:.1f} | {d['p95_ms']:.1f} |"
        for name, d in result["dicom_decode"].items()
    ]
    write_result("stages", result, "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
