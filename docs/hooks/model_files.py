"""MkDocs hook: serve the shipped model's evaluation plots beside the model page, and render the
card's key facts from `models/default/model_card.json` (through engine's ModelCard, the one reader
of the card), so no page retypes a figure."""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

from engine.card import ModelCard

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "models" / "default"
EVALUATION = BUNDLE / "evaluation"
# Plots that `make bench` writes beside a results file the model page includes.
RESULT_PLOTS = ("population_scores.png", "population_flagged_children.png")
CARD_MARKER = "<!-- model-card-facts -->"


def on_files(files, config):
    """The report's plots are linked relative to it (`roc_curve.png`); the model page includes the
    report, so the plots are published under `model/` where those links land."""
    plots = [*sorted(EVALUATION.glob("*.png"))]
    plots += [ROOT / "benchmarks" / "results" / name for name in RESULT_PLOTS]
    for plot in plots:
        if plot.is_file():
            files.append(File.generated(config, f"model/{plot.name}", abs_src_path=str(plot)))
    return files


def optional(value: object, fmt: str = "{}") -> str:
    """A card field the bundle may not have (older cards, a model without calibration)."""
    return "-" if value is None else fmt.format(value)


def card_facts() -> str:
    """The card's key facts as a Markdown table, read through the one typed card reader."""
    card = ModelCard.read(BUNDLE)
    threshold, calibration = card.threshold, card.calibration
    rows = [
        ("name and version", f"`{card.name}` {card.version}"),
        ("networks averaged", str(len(card.gradcam.members))),
        (
            "population",
            optional(
                card.population and f"{card.population.description} ({card.population.source})"
            ),
        ),
        ("decision threshold", f"{threshold.value:.3f} ({optional(threshold.rule)})"),
        ("cost of a missed pneumonia / a false alarm", optional(threshold.false_negative_cost)),
        ("the same cut on the networks' mean logit", optional(threshold.mean_logit_cut, "{:.3f}")),
        ("threshold chosen on", threshold.chosen_on),
        (
            "calibration",
            optional(
                calibration
                and f"{calibration.method} on {calibration.fitted_on}: slope "
                f"{calibration.slope:.3f}, bias {calibration.bias:.3f}"
            ),
        ),
        ("guard: refusal limit on the score", optional(card.ood and card.ood.threshold, "{:.3f}")),
        ("population check from the pixels", population_check(card)),
        (
            "Grad-CAM layers (per network, maps multiplied)",
            ", ".join(card.gradcam.members[0].feature_layers),
        ),
    ]
    lines = ["| fact | value |", "| --- | --- |"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def population_check(card: ModelCard) -> str:
    check = card.population.check if card.population else None
    if check is None:
        return "-"
    rates = check.rates
    return (
        f"flags at a population score >= {check.threshold:.3f}; adults' films flagged out of "
        f"fold {100 * rates['adult_films_flagged_out_of_fold']:.1f}% "
        f"({100 * rates['adults_flagged_out_of_fold']:.1f}% with their random variants), "
        f"validation children {100 * rates['validation_children_flagged']:.2f}%"
    )


def on_page_markdown(markdown, page, config, files):
    if CARD_MARKER in markdown:
        markdown = markdown.replace(CARD_MARKER, card_facts())
    return markdown
