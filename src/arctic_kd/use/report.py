"""One self-contained HTML page per run: config, metrics table, curves, confusion matrix, activation maps.

Images are embedded as base64 PNGs, so the page can be mailed or attached to an issue as a single file.
"""

from __future__ import annotations

import base64
import html
import tempfile
from dataclasses import replace
from pathlib import Path

import yaml

from arctic_kd.engine.checkpoint import load_checkpoint
from arctic_kd.engine.stages import run_eval
from arctic_kd.errors import ArcticError, DataError
from arctic_kd.use.predict import checkpoint_config
from arctic_kd.use.viz.activations import collect_panels, load_model, plot_activation_grid
from arctic_kd.use.viz.confusion import plot_checkpoint_confusion
from arctic_kd.use.viz.curves import plot_learning_curves, read_metrics

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; font-size: 0.85em; }
img { max-width: 100%; border: 1px solid #ddd; }
.note { color: #777; }
"""


def run_checkpoint(run_dir: Path) -> Path:
    for name in ("best.pt", "last.pt"):
        if (run_dir / name).is_file():
            return run_dir / name
    raise DataError(run_dir, "no best.pt or last.pt: not a finished run folder")


def build_report(
    run_dir: str | Path,
    out_html: str | Path | None = None,
    teacher: str | Path | None = None,
    num_samples: int = 2,
    data_root: str | Path | None = None,
) -> Path:
    """Write the report (default RUN_DIR/report.html). Activation examples need the run's dataset; when it
    is not reachable the page says so instead of failing."""
    run_dir = Path(run_dir)
    checkpoint_path = run_checkpoint(run_dir)
    checkpoint = load_checkpoint(checkpoint_path)
    records = read_metrics(run_dir / "metrics.jsonl")
    out_html = Path(out_html) if out_html else run_dir / "report.html"
    teacher = teacher or _named_teacher(checkpoint)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        curves = _image(plot_learning_curves(run_dir / "metrics.jsonl", work / "curves.png"))
        confusion = _image(plot_checkpoint_confusion(checkpoint_path, work / "confusion.png"))
        activations = _activation_section(
            checkpoint_path, teacher, num_samples, data_root, work / "activations.png"
        )
    agreement = _agreement(checkpoint, checkpoint_path, teacher, data_root)
    sections = [
        f"<h1>Run report: {_e(run_dir.name)}</h1>",
        _summary(run_dir, checkpoint_path, checkpoint, records),
        "<h2>Learning curves</h2>",
        curves,
        f"<h2>Confusion matrix ({_e(checkpoint_path.name)})</h2>",
        confusion,
        "<h2>Activation regions</h2>",
        activations,
        agreement,
        "<h2>Metrics per epoch</h2>",
        _metrics_table(records),
        "<h2>Config</h2>",
        f"<pre>{_e(yaml.safe_dump(checkpoint['config'], sort_keys=False))}</pre>",
    ]
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>arctic-kd report: {_e(run_dir.name)}</title><style>{_STYLE}</style></head>\n<body>\n"
        + "\n".join(sections)
        + "\n</body></html>\n"
    )
    out_html.parent.mkdir(parents=True, exist_ok=True)
    out_html.write_text(page, encoding="utf-8")
    return out_html


def _e(text: object) -> str:
    return html.escape(str(text))


def _image(png: Path, alt: str = "") -> str:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return f'<p><img alt="{_e(alt or png.stem)}" src="data:image/png;base64,{data}"></p>'


def _summary(run_dir: Path, checkpoint_path: Path, checkpoint: dict, records: list[dict]) -> str:
    spec = checkpoint["model"]
    final = records[-1]
    best = max(records, key=lambda r: r.get("val_top1", float("-inf")))
    rows = {
        "run folder": run_dir,
        "method": checkpoint.get("method", "?"),
        "modality": checkpoint["modality"].upper(),
        "network": f"{spec['arch']}-{spec['depth']}, width {spec['width']}",
        "classes": len(checkpoint["class_names"]),
        "epochs logged": len(records),
        "final test top-1 / top-5": _pair(final),
        "best validation top-1 / top-5 (best.pt)": _pair(best, "val"),
        "pictures from": checkpoint_path.name,
    }
    cells = "".join(
        f'<tr><th style="text-align:left">{_e(k)}</th><td>{_e(v)}</td></tr>' for k, v in rows.items()
    )
    return f"<table>{cells}</table>"


def _pair(record: dict, split: str = "test") -> str:
    top1, top5 = record.get(f"{split}_top1"), record.get(f"{split}_top5")
    if top1 is None:
        return "not logged"
    return f"{top1:.1f} % / {top5:.1f} % (epoch {record['epoch']})"


def _metrics_table(records: list[dict]) -> str:
    keys = list(dict.fromkeys(k for r in records for k in r))
    head = "".join(f"<th>{_e(k)}</th>" for k in keys)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(_number(r.get(k)))}</td>" for k in keys) + "</tr>" for r in records
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _number(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2e}" if 0 < abs(value) < 1e-2 else f"{value:.3f}"
    return "" if value is None else str(value)


def _named_teacher(checkpoint: dict) -> str | None:
    """The teacher a distillation run learnt from, if its checkpoint is still where the run found it."""
    if checkpoint["modality"] != "ir" or checkpoint.get("method") == "ce":
        return None
    named = checkpoint["config"].get("distill", {}).get("teacher")
    return named if named and Path(named).is_file() else None


def _activation_section(
    checkpoint_path: Path,
    teacher: str | Path | None,
    num_samples: int,
    data_root: str | Path | None,
    out_png: Path,
) -> str:
    """The run's network beside its teacher (given, or named by a distillation run), or a note why not."""
    paths = [teacher, checkpoint_path] if teacher else [checkpoint_path]
    try:
        samples = collect_panels([load_model(p) for p in paths], data_root, num_samples=num_samples)
    except ArcticError as error:
        return f'<p class="note">Not available: {_e(error)}</p>'
    return _image(plot_activation_grid(samples, out_png), "activation maps")


def _agreement(checkpoint: dict, checkpoint_path: Path, teacher: str | Path | None, data_root) -> str:
    """How closely an IR run's maps follow its RGB teacher's over the whole test split (`arctic eval
    --teacher`): the pictures above show a few clips, this says whether they are typical."""
    if teacher is None or checkpoint["modality"] != "ir":
        return ""
    config = checkpoint_config(checkpoint)
    # view 0 is all the agreement reads; whatever device the run trained on, this machine's
    data = replace(config.data, test_clips=1, test_crops=1, root=str(data_root or config.data.root))
    config = replace(config, data=data, device="auto")
    try:
        agreement = run_eval(checkpoint_path, config, teacher_path=teacher)["agreement"]
    except ArcticError as error:
        return f'<p class="note">Map agreement with the teacher not available: {_e(error)}</p>'
    return (
        f"<p>Over the {agreement['clips']} test clips, this network's class activation maps have a mean "
        f"correlation of {agreement['map_correlation']:.3f} with those of the teacher ({_e(teacher)}); "
        f"L_ARC {agreement['arc_loss']:.4f} at ρ {agreement['rho']:g}. 1 is the same map, 0 unrelated.</p>"
    )
