"""Helpers shared by the benchmark scripts: sample images, statistics, writing results."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks.devdata import dev_data_root

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"


def sample_uploads() -> dict[str, bytes]:
    """The full-resolution samples, plus a ~2000 px and a ~1.5 MP JPEG made from the largest."""
    samples_dir = dev_data_root() / "samples"
    if not samples_dir.is_dir():
        raise SystemExit(f"benchmarks need sample X-rays in {samples_dir} (or set CXR_DATA_DIR)")
    uploads = {p.name: p.read_bytes() for p in sorted(samples_dir.iterdir()) if p.is_file()}
    largest = max(uploads.values(), key=lambda b: cv2.imdecode(np.frombuffer(b, np.uint8), 0).size)
    gray = cv2.imdecode(np.frombuffer(largest, np.uint8), cv2.IMREAD_GRAYSCALE)
    for name, (w, h) in {
        "synthetic_2000px.jpg": (2000, 1600),
        "synthetic_1.5MP.jpg": (1414, 1060),
    }.items():
        big = cv2.resize(gray, (w, h), interpolation=cv2.INTER_CUBIC)
        uploads[name] = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes()
    return uploads


def validation_split():
    """The development data's validation split as training carves it (default settings): the
    selection split, for benchmarks that compare candidates without touching the test split."""
    from training.data import load_splits
    from training.settings import TrainSettings

    settings = TrainSettings()
    root = dev_data_root() / "chest_xray"
    return load_splits(root, settings.val_fraction, seed=settings.split_seed).val


def summarize_ms(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {
        "n": int(ms.size),
        "median_ms": round(float(np.median(ms)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "mean_ms": round(float(statistics.fmean(ms)), 3),
    }


def time_calls(fn, repeats: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


# The vector instructions the networks' kernels can use. Machines of "the same kind" differ: the
# shipped graph ran in 7.9 ms on one thread on an earlier one (stages.md at f5b4d2d) and 16.6 ms
# on an AMD EPYC with AVX2 and no AVX-512 (b6a007e), so a figure is read with them.
SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")


def cpu_facts() -> dict[str, Any]:
    """The processor's model name and which of SIMD_FLAGS it has (Linux /proc/cpuinfo)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    facts: dict[str, Any] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and "model" not in facts:
            facts["model"] = value.strip()
        elif key == "flags":
            flags = set(value.split())
            facts["simd"] = [flag for flag in SIMD_FLAGS if flag in flags]
            break
    return facts


def processor_line(facts: dict[str, Any]) -> str:
    """'AMD EPYC, 2 cores (avx2, fma; no AVX-512)' from `machine()`'s facts."""
    simd = facts.get("cpu_simd", [])
    wide = "" if any(flag.startswith("avx512") for flag in simd) else "; no AVX-512"
    return (
        f"{facts.get('cpu_model', facts.get('processor', '?'))}, {facts.get('cpus')} cores "
        f"({', '.join(simd) or 'no AVX2'}{wide})"
    )


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        **{f"cpu_{key}": value for key, value in cpu_facts().items()},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_result(name: str, result: dict[str, Any], markdown: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown)
    print(markdown)


def head_commit() -> str:
    """This checkout's commit, short."""
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()


@contextlib.contextmanager
def checkout_of(rev: str, prefix: str) -> Iterator[tuple[Path, Path]]:
    """(a scratch folder, a git worktree of `rev` in it): another commit's code to serve beside
    this one's in the same run; the worktree is removed afterwards."""
    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    checkout = scratch / "before"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(checkout), rev],
        cwd=REPO, check=True, capture_output=True,
    )  # fmt: skip
    try:
        yield scratch, checkout
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(checkout)], cwd=REPO)
