"""The statistics of runs over seeds, one definition each for the demo and the bench."""

from __future__ import annotations

import math
import statistics

REFERENCE = "arctic"  # the method every other IR run is compared with, seed by seed


def mean_std(values: list[float]) -> dict | None:
    """Mean, sample std and the values; None where a value is unknown (NaN: a run recorded before
    multi-view testing existed)."""
    if any(math.isnan(v) for v in values):
        return None
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "values": values,
    }


def gap_recovered(teacher: float, ir_only: float, method: float) -> float | None:
    """Share of the teacher–IR-only top-1 gap a method closes, in percent; None when the teacher is not
    better than IR alone (there is no gap to recover)."""
    gap = teacher - ir_only
    return 100.0 * (method - ir_only) / gap if gap > 0 else None


def paired_difference(reference: list[float], method: list[float]) -> dict | None:
    """Per-seed top-1 differences from the reference run on the same teacher: their mean, its standard
    error and on how many seeds the method is below. Seeds share their teacher and data order, so the
    paired difference is far less noisy than the difference of two means (None with one seed)."""
    differences = [m - r for m, r in zip(method, reference, strict=True)]
    if len(differences) < 2:
        return None
    return {
        "mean": statistics.fmean(differences),
        "se": statistics.stdev(differences) / math.sqrt(len(differences)),
        "below": sum(d < 0 for d in differences),
        "values": differences,
    }
