"""Classification metrics at a threshold (the threshold itself: `training.operating_point`)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, confusion_matrix, roc_auc_score


def classification_metrics(
    labels: np.ndarray, probabilities: np.ndarray, threshold: float
) -> dict[str, float | int | list[list[int]]]:
    """Accuracy, sensitivity, specificity, precision, F1, ROC/PR AUC, confusion matrix."""
    labels = np.asarray(labels).astype(int)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    predicted = (probabilities >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(labels, predicted, labels=[0, 1]).ravel().tolist()

    def ratio(a: int, b: int) -> float:
        return float(a / b) if b else float("nan")

    precision = ratio(tp, tp + fp)
    recall = ratio(tp, tp + fn)
    both_classes = len(np.unique(labels)) == 2
    return {
        "threshold": float(threshold),
        "n": int(labels.size),
        "accuracy": ratio(tp + tn, labels.size),
        "sensitivity": recall,
        "specificity": ratio(tn, tn + fp),
        "precision": precision,
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "roc_auc": float(roc_auc_score(labels, probabilities)) if both_classes else float("nan"),
        "pr_auc": float(average_precision_score(labels, probabilities))
        if both_classes
        else float("nan"),
        "confusion_matrix": [[tn, fp], [fn, tp]],
    }
