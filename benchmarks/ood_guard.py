"""What the out-of-distribution guard refuses: real films (the dev-test split, the full-resolution
samples and simulated uploads of them) against things that are not chest films (the offline set
of benchmarks/nonxray.py, and dev-test films made negative or turned 90 degrees).

    python -m benchmarks.ood_guard [--model models/default]
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from benchmarks.common import machine, write_result
from benchmarks.devdata import dev_data_root
from benchmarks.nonxray import negative, not_chest_xrays, turned
from engine import ModelBundle, default_model_dir
from training.data import list_split
from training.evaluate import Films, Scorer
from training.upload_simulation import simulate_upload


def judge(scorer: Scorer, datas: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    films = Films.of(datas, scorer.bundle.preprocessing)
    _, scores = scorer.run(films.tensors)
    return scores, scorer.refused(scores, films.grays, films.colours)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=str(default_model_dir()))
    args = parser.parse_args()
    bundle = ModelBundle.load(args.model)
    scorer = Scorer(bundle)
    root = dev_data_root()
    test = [p.read_bytes() for p in list_split(root / "chest_xray", "test").paths]
    samples = [p.read_bytes() for p in sorted((root / "samples").iterdir()) if p.is_file()]
    rng = np.random.default_rng(0)
    uploads = [simulate_upload(d, rng) for d in samples for _ in range(5)]
    groups = {
        "dev-test films": ("film", test),
        "full-resolution samples": ("film", samples),
        "simulated uploads of the samples (5 each)": ("film", uploads),
        "dev-test films as negatives": ("not a film", [negative(d) for d in test]),
        "dev-test films turned 90 degrees": ("refused or same label", [turned(d) for d in test]),
    }
    by_kind: dict[str, list[bytes]] = defaultdict(list)
    names: dict[str, list[str]] = defaultdict(list)
    for name, (kind, data) in not_chest_xrays().items():
        by_kind[kind].append(data)
        names[kind].append(name)
    for kind, datas in by_kind.items():
        groups[f"not a chest X-ray: {kind}"] = ("not a film", datas)

    rows, result = [], {"machine": machine(), "model_version": bundle.version, "groups": {}}
    spec = bundle.card.ood
    for group, (expected, datas) in groups.items():
        scores, refused = judge(scorer, datas)
        entry = {
            "expected": expected,
            "n": len(datas),
            "refused": int(refused.sum()),
            "score_min": float(scores.min()),
            "score_median": float(np.median(scores)),
            "score_max": float(scores.max()),
        }
        kind = group.removeprefix("not a chest X-ray: ")
        if kind in names:
            entry["accepted"] = [n for n, r in zip(names[kind], refused, strict=True) if not r]
        result["groups"][group] = entry
        rows.append(
            f"| {group} | {expected} | {entry['refused']} / {entry['n']} | "
            f"{entry['score_min']:.2f} / {entry['score_median']:.2f} / {entry['score_max']:.2f} |"
        )
    if "dev-test films turned 90 degrees" in groups:
        upright, _ = scorer.run(Films.of(test, bundle.preprocessing).tensors)
        turned_probs, _ = scorer.run(
            Films.of([turned(d) for d in test], bundle.preprocessing).tensors
        )
        _, refused = judge(scorer, [turned(d) for d in test])
        same = (upright >= bundle.threshold) == (turned_probs >= bundle.threshold)
        result["turned_kept_label_or_refused"] = int(np.sum(same | refused))
    header = [
        f"Model {bundle.version}; refusal limit {spec.threshold:.3f} on the score, blank below "
        f"{spec.min_gray_std} gray levels of spread, colour above {spec.max_colourfulness}.",
        "",
        "| images | should be | refused | score min / median / max |",
        "| --- | --- | --- | --- |",
    ]
    footer = [
        "",
        f"Turned 90 degrees: {result.get('turned_kept_label_or_refused')} of {len(test)} "
        "were refused or kept their label.",
    ]
    write_result("ood_guard", result, "\n".join(header + rows + footer) + "\n")


if __name__ == "__main__":
    main()
