"""Learning curves of a run from its `metrics.jsonl`: losses, test accuracy and learning rate per epoch."""

from __future__ import annotations

import json
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from arctic_kd.errors import DataError
from arctic_kd.use.viz import save_figure

_ACCURACY_NAMES = {"top1": "top-1", "top5": "top-5", "mean_class": "mean class"}


def read_metrics(metrics_jsonl: str | Path) -> list[dict]:
    """One record per epoch, in epoch order; a resumed run's repeated epochs keep their latest line."""
    path = Path(metrics_jsonl)
    if not path.is_file():
        raise DataError(path, "metrics log not found")
    by_epoch: dict[int, dict] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            by_epoch[int(record["epoch"])] = record
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise DataError(path, "not a metrics line (JSON with an 'epoch')", line=number) from None
    if not by_epoch:
        raise DataError(path, "no epoch has been logged yet")
    return [by_epoch[epoch] for epoch in sorted(by_epoch)]


def _series(records: list[dict], key: str) -> tuple[list[int], list[float]]:
    points = [(r["epoch"], float(r[key])) for r in records if isinstance(r.get(key), int | float)]
    return [p[0] for p in points], [p[1] for p in points]


def _keys(records: list[dict]) -> list[str]:
    return list(dict.fromkeys(key for record in records for key in record))


def _is_accuracy(key: str) -> bool:
    return any(key.endswith(name) for name in _ACCURACY_NAMES)


def _label(key: str) -> str:
    split, _, name = key.partition("_")
    return f"{split} {_ACCURACY_NAMES.get(name, name)}"


def plot_learning_curves(metrics_jsonl: Path, out_png: Path) -> Path:
    """Three panels: every training loss (the total in bold), accuracies in %, and the learning rate."""
    records = read_metrics(metrics_jsonl)
    keys = _keys(records)
    figure = Figure(figsize=(13, 3.8), layout="constrained")
    losses, accuracy, rate = figure.subplots(1, 3)
    for key in keys:
        if key.startswith("train_") and not _is_accuracy(key):
            bold = key == "train_total"
            style = {"lw": 2.4, "color": "black", "zorder": 3} if bold else {"lw": 1.3}
            losses.plot(*_series(records, key), marker="o", markersize=3, label=key[6:], **style)
    styles = iter(["-", "--", ":", "-."] * len(keys))  # top-1 and mean class coincide on balanced splits
    for key in keys:
        if _is_accuracy(key):
            accuracy.plot(*_series(records, key), next(styles), marker="o", markersize=3, label=_label(key))
    rate.plot(*_series(records, "lr"), marker="o", markersize=3, color="tab:purple")
    losses.set(title="training losses (weighted)", ylabel="loss")
    accuracy.set(title="accuracy", ylabel="%", ylim=(0, 102))
    rate.set(title="learning rate (end of epoch)", ylabel="lr")
    for axes in (losses, accuracy, rate):
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
    for axes in (losses, accuracy):
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=8)
    figure.suptitle(f"learning curves: {Path(metrics_jsonl).parent.name or metrics_jsonl}")
    return save_figure(figure, out_png)


def plot_run_curves(result: dict) -> Path | None:
    """`curves.png` beside the `metrics.jsonl` a finished training stage left (`fit`'s `metrics_log`), so
    every run folder gets its curves; None on the processes of a torchrun that wrote no log."""
    log = result["metrics_log"]
    return plot_learning_curves(log, log.parent / "curves.png") if log else None
