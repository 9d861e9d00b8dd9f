"""Where the time goes for one upload, stage by stage; ONNX vs the seed's Keras `model.predict`;
FLOPs per image against the machine's measured float32 peak; preprocessing of a ~2000 px JPEG.

    python -m benchmarks.stages [--model models/default] [--repeats 30]
"""

from __future__ import annotations

import argparse
import base64
import os
import time

import numpy as np

from benchmarks.common import machine, sample_uploads, summarize_ms, time_calls, write_result
from engine import Predictor, default_model_dir
from engine.overlay import encode_png, render_overlay
from engine.runtime import configure_tensorflow
from imaging import decode_upload, preprocess_grayscale


def conv_dense_flops(model) -> int:
    """Multiply-adds x2 of every Conv2D and Dense layer for one image."""
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=str(default_model_dir()))
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    configure_tensorflow(1)
    predictor = Predictor.from_directory(args.model, onnx_threads=1)
    params = predictor.bundle.preprocessing
    uploads = sample_uploads()

    stages: dict[str, list[float]] = {
        k: [] for k in ("decode", "preprocess", "onnx", "gradcam", "overlay", "png_base64", "total")
    }
    per_image = {}
    for name, data in uploads.items():
        for _ in range(max(3, args.repeats // 3)):
            t0 = time.perf_counter()
            _, gray = decode_upload(data, params)
            t1 = time.perf_counter()
            tensor = preprocess_grayscale(gray, params)
            t2 = time.perf_counter()
            prob = predictor.bundle.predict(tensor[np.newaxis])[0]
            t3 = time.perf_counter()
            cam = predictor.gradcam(tensor, explain_positive=bool(prob >= predictor.threshold))
            t4 = time.perf_counter()
            overlay = render_overlay(gray, cam, predictor.heatmap_max_side)
            t5 = time.perf_counter()
            base64.b64encode(encode_png(overlay))
            t6 = time.perf_counter()
            for key, dt in zip(
                stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5, t6 - t0), strict=True
            ):
                stages[key].append(dt)
        per_image[name] = len(data)
    stage_summary = {k: summarize_ms(v) for k, v in stages.items()}

    big = uploads["synthetic_2000px.jpg"]
    prep_2000 = summarize_ms(
        time_calls(
            lambda: preprocess_grayscale(decode_upload(big, params)[1], params), args.repeats
        )
    )

    # The seed's way: same preprocessing, then Keras model.predict one image at a time.
    model = predictor.bundle.keras_model()
    tensors = [
        preprocess_grayscale(decode_upload(d, params)[1], params)[np.newaxis]
        for d in uploads.values()
    ]
    keras_times, onnx_times = [], []
    for t in tensors:
        keras_times += time_calls(
            lambda t=t: model.predict(t, verbose=0), max(3, args.repeats // 5), 1
        )
        onnx_times += time_calls(lambda t=t: predictor.bundle.predict(t), args.repeats, 3)
    keras_s = summarize_ms(keras_times)
    onnx_s = summarize_ms(onnx_times)

    flops = conv_dense_flops(model)
    peak_1 = matmul_peak_gflops(1)
    peak = matmul_peak_gflops(os.cpu_count() or 1)
    onnx_gflops = flops / (onnx_s["median_ms"] / 1000) / 1e9
    batch = np.concatenate(tensors * 3)[:32]
    batch_s = summarize_ms(time_calls(lambda: predictor.bundle.predict(batch), 10, 2))
    from engine.bundle import onnx_session

    two_threads = onnx_session(predictor.bundle.directory / "model.onnx", intra_op_threads=2)
    name_in = predictor.bundle.input_name
    batch2_s = summarize_ms(time_calls(lambda: two_threads.run(None, {name_in: batch}), 10, 2))
    batch_gflops = flops * 32 / (batch2_s["median_ms"] / 1000) / 1e9

    result = {
        "machine": machine(),
        "model_version": predictor.bundle.version,
        "uploads": {k: f"{v} bytes" for k, v in per_image.items()},
        "stages": stage_summary,
        "preprocess_2000px_jpeg": prep_2000,
        "seed_keras_predict_per_image": keras_s,
        "onnx_per_image": onnx_s,
        "onnx_speedup_vs_seed": round(keras_s["median_ms"] / onnx_s["median_ms"], 1),
        "flops_per_image": flops,
        "matmul_peak_gflops_1thread": round(peak_1, 1),
        "matmul_peak_gflops_all_cores": round(peak, 1),
        "onnx_batch1_1thread_gflops": round(onnx_gflops, 2),
        "onnx_batch1_share_of_1thread_peak": round(onnx_gflops / peak_1, 4),
        "onnx_batch32_1thread": batch_s,
        "onnx_batch32_2threads": batch2_s,
        "onnx_batch32_2threads_gflops": round(batch_gflops, 2),
        "onnx_batch32_share_of_peak": round(batch_gflops / peak, 4),
    }
    rows = ["| stage (full-resolution uploads) | median ms | p95 ms |", "| --- | --- | --- |"]
    rows += [
        f"| {k} | {v['median_ms']:.2f} | {v['p95_ms']:.2f} |" for k, v in stage_summary.items()
    ]
    rows += [
        "",
        "| comparison | value |",
        "| --- | --- |",
        f"| preprocess a 2000x1600 JPEG (decode + chain) | {prep_2000['median_ms']:.2f} ms |",
        f"| seed-style Keras `model.predict`, 1 image, median | {keras_s['median_ms']:.2f} ms |",
        f"| ONNX Runtime, 1 image, 1 thread, median | {onnx_s['median_ms']:.3f} ms |",
        f"| ONNX speed-up over the seed's way (same run) | {result['onnx_speedup_vs_seed']}x |",
        f"| model FLOPs per image | {flops / 1e6:.0f} MFLOP |",
        f"| float32 matmul peak (numpy 2048^2), 1 thread | {peak_1:.1f} GFLOP/s |",
        f"| float32 matmul peak (numpy 2048^2), all cores | {peak:.1f} GFLOP/s |",
        f"| ONNX batch 1, 1 thread: achieved | {onnx_gflops:.2f} GFLOP/s "
        f"({onnx_gflops / peak_1:.1%} of the 1-thread peak) |",
        f"| ONNX batch 32, 2 threads: achieved | {batch_gflops:.2f} GFLOP/s "
        f"({batch_gflops / peak:.1%} of the all-core peak) |",
    ]
    write_result("stages", result, "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
