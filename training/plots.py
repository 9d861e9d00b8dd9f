"""PNG plots of a training run and an evaluation: curves, ROC, confusion matrix, histograms, and
the reliability diagram."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import roc_curve

from training.data import CLASS_NAMES


def plot_training_curves(log_csv: Path, out_png: Path) -> bool:
    """Loss and AUC per epoch, training vs validation; False if there is no log."""
    if not Path(log_csv).is_file():
        return False
    with open(log_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return False
    members = sorted({r.get("member", "0") for r in rows}, key=int)
    panels = [
        (key, title)
        for key, title in (
            ("loss", "binary cross-entropy"),
            ("auc", "ROC AUC"),
            ("learning_rate", "learning rate"),
        )
        if key in rows[0] or f"val_{key}" in rows[0]
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.8), squeeze=False)
    for ax, (key, title) in zip(axes[0], panels, strict=True):
        for member in members:
            mine = [r for r in rows if r.get("member", "0") == member]
            epochs = [int(r["epoch"]) + 1 for r in mine]
            tag = f" (member {member})" if len(members) > 1 else ""
            if key in mine[0]:
                ax.plot(epochs, [float(r[key]) for r in mine], "o-", ms=3, label="train" + tag)
            if f"val_{key}" in mine[0]:
                values = [float(r[f"val_{key}"]) for r in mine]
                ax.plot(epochs, values, "s-", ms=3, label="validation" + tag)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if key == "learning_rate":
            ax.set_yscale("log")
        else:
            ax.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return True


def plot_roc(labels: np.ndarray, probs: np.ndarray, threshold: float, auc: float, out_png: Path):
    fpr, tpr, _ = roc_curve(labels, probs)
    predicted = probs >= threshold
    op_tpr = float(np.mean(predicted[labels == 1])) if np.any(labels == 1) else np.nan
    op_fpr = float(np.mean(predicted[labels == 0])) if np.any(labels == 0) else np.nan
    fig, ax = plt.subplots(figsize=(4.8, 4.6))
    ax.plot(fpr, tpr, lw=2, label=f"ROC (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1)
    ax.plot(op_fpr, op_tpr, "o", color="crimson", label=f"threshold {threshold:.3f}")
    ax.set_xlabel("1 - specificity (false positive rate)")
    ax.set_ylabel("sensitivity (true positive rate)")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


def plot_confusion(matrix: list[list[int]], threshold: float, out_png: Path) -> None:
    cm = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(4.4, 4))
    ax.imshow(cm, cmap="Blues")
    for (i, j), value in np.ndenumerate(cm):
        colour = "white" if value > cm.max() / 2 else "black"
        ax.text(j, i, str(value), ha="center", va="center", fontsize=14, color=colour)
    ax.set_xticks([0, 1], [f"pred {c}" for c in CLASS_NAMES])
    ax.set_yticks([0, 1], [f"true {c}" for c in CLASS_NAMES])
    ax.set_title(f"confusion matrix at {threshold:.3f}")
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


def plot_histograms(labels: np.ndarray, probs: np.ndarray, threshold: float, out_png: Path):
    fig, ax = plt.subplots(figsize=(6, 3.8))
    bins = np.linspace(0, 1, 41)
    for label, name in enumerate(CLASS_NAMES):
        ax.hist(probs[labels == label], bins=bins, alpha=0.6, label=f"true {name}")
    ax.axvline(threshold, color="crimson", ls="--", label=f"threshold {threshold:.3f}")
    ax.set_xlabel("P(PNEUMONIA)")
    ax.set_ylabel("images")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


def plot_reliability(bins: list[dict], ece: float, out_png: Path) -> None:
    """Observed pneumonia rate against the mean probability in each bin; the diagonal is perfect."""
    plot_reliability_curves(
        [(bins, "tab:blue", "bins")], f"reliability (ECE {ece:.3f}, 10 bins)", out_png
    )


def plot_reliability_before_after(before: list[dict], after: list[dict], out_png: Path) -> None:
    """Two reliability curves on one diagonal: the bundle as it was, and site-calibrated."""
    curves = [(before, "tab:red", "before"), (after, "tab:blue", "after")]
    plot_reliability_curves(curves, "site calibration, cross-validated", out_png)


def plot_reliability_curves(
    curves: list[tuple[list[dict], str, str]], title: str, out_png: Path
) -> None:
    """One reliability curve per (bins, colour, name); marker size follows each bin's films."""
    fig, ax = plt.subplots(figsize=(4.8, 4.6))
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1, label="perfectly calibrated")
    for bins, colour, name in curves:
        if not bins:
            continue
        mean = [b["mean_probability"] for b in bins]
        observed = [b["observed_rate"] for b in bins]
        largest = max(b["count"] for b in bins)
        sizes = [20 + 180 * b["count"] / largest for b in bins]
        ax.plot(mean, observed, "-", color=colour, lw=1.5)
        ax.scatter(mean, observed, s=sizes, color=colour, zorder=3, label=f"{name} (size = films)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted P(PNEUMONIA)")
    ax.set_ylabel("observed share with pneumonia")
    ax.set_title(title)
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
