"""Pictures of models and runs: learning curves, confusion matrices, activation regions, HTML reports.

Figures are drawn on matplotlib's Agg canvas without pyplot, so nothing depends on a display or on
global figure state, and a library caller never gets windows.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure


def save_figure(figure: Figure, out_png: str | Path, dpi: int = 110) -> Path:
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_png, dpi=dpi, bbox_inches="tight", facecolor="white")
    return out_png
