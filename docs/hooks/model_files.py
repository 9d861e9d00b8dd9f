"""MkDocs hook: serve the shipped model's evaluation plots beside the model page, and render the
card's key facts from `models/default/model_card.json`, so no page retypes a figure."""

from __future__ import annotations

import json
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
EVALUATION = ROOT / "models" / "default" / "evaluation"
CARD = ROOT / "models" / "default" / "model_card.json"
CARD_MARKER = "<!-- model-card-facts -->"


def on_files(files, config):
    """The report's plots are linked relative to it (`roc_curve.png`); the model page includes the
    report, so the plots are published under `model/` where those links land."""
    for plot in sorted(EVALUATION.glob("*.png")):
        files.append(File.generated(config, f"model/{plot.name}", abs_src_path=str(plot)))
    return files


def card_facts() -> str:
    card = json.loads(CARD.read_text())
    population = card["population"]
    threshold = card["threshold"]
    calibration = card["calibration"]
    rows = [
        ("name and version", f"`{card['name']}` {card['version']}"),
        ("networks averaged", str(len(card["gradcam"]["members"]))),
        ("population", f"{population['description']} ({population['source']})"),
        ("decision threshold", f"{threshold['value']:.3f} ({threshold.get('rule', '-')})"),
        ("cost of a missed pneumonia / a false alarm", f"{threshold.get('false_negative_cost')}"),
        ("the same cut on the networks' mean logit", f"{threshold.get('mean_logit_cut', 0):.3f}"),
        ("threshold chosen on", threshold["chosen_on"]),
        (
            "calibration",
            f"{calibration['method']} on {calibration['fitted_on']}: slope "
            f"{calibration['slope']:.3f}, bias {calibration['bias']:.3f}",
        ),
        ("guard: refusal limit on the score", f"{card['ood']['threshold']:.3f}"),
        (
            "Grad-CAM layers (per network, maps multiplied)",
            ", ".join(card["gradcam"]["members"][0]["feature_layers"]),
        ),
    ]
    lines = ["| fact | value |", "| --- | --- |"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def on_page_markdown(markdown, page, config, files):
    if CARD_MARKER in markdown:
        markdown = markdown.replace(CARD_MARKER, card_facts())
    return markdown
