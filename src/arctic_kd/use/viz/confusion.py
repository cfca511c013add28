"""Confusion-matrix pictures: which true classes (rows) the model takes for which (columns)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from arctic_kd.engine.checkpoint import load_checkpoint
from arctic_kd.errors import DataError
from arctic_kd.use.viz import save_figure

MAX_ANNOTATED_CLASSES = 30  # beyond this, cell counts are unreadable


def plot_confusion(
    confusion: Sequence[Sequence[int]], class_names: Sequence[str], out_png: str | Path, title: str = ""
) -> Path:
    """Cells coloured by the share of the true class (so rare classes show as clearly as common ones),
    annotated with the counts."""
    counts = np.asarray(confusion, dtype=np.int64)
    n = len(class_names)
    if counts.shape != (n, n):
        raise ValueError(f"confusion matrix of shape {counts.shape} does not fit {n} class names")
    share = 100.0 * counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = max(5.0, 0.42 * n + 3.0)
    figure = Figure(figsize=(side + 1.2, side), layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(share, cmap="Blues", vmin=0, vmax=100)
    figure.colorbar(image, ax=axes, shrink=0.8, label="% of the true class")
    axes.set_xticks(range(n), class_names, rotation=60, ha="right", fontsize=8)
    axes.set_yticks(range(n), class_names, fontsize=8)
    axes.set(xlabel="predicted class", ylabel="true class", title=title)
    if n <= MAX_ANNOTATED_CLASSES:
        size = 11 if n <= 6 else 8 if n <= 15 else 6
        for row, col in zip(*np.nonzero(counts), strict=True):
            colour = "white" if share[row, col] > 55 else "black"
            axes.text(col, row, str(counts[row, col]), ha="center", va="center", fontsize=size, color=colour)
    return save_figure(figure, out_png)


def plot_checkpoint_confusion(checkpoint_path: str | Path, out_png: str | Path) -> Path:
    """The confusion matrix a checkpoint stores: its test-split evaluation of the epoch it was saved at."""
    checkpoint = load_checkpoint(checkpoint_path)
    metrics = checkpoint.get("metrics") or {}
    if "confusion" not in metrics:
        raise DataError(checkpoint_path, "the checkpoint holds no test metrics (confusion matrix)")
    title = (
        f"{Path(checkpoint_path).parent.name}/{Path(checkpoint_path).name}, epoch {checkpoint.get('epoch')}: "
        f"top-1 {metrics['top1']:.1f} % on {metrics['samples']} test clips"
    )
    return plot_confusion(metrics["confusion"], checkpoint["class_names"], out_png, title)
