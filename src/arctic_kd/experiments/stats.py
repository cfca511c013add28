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
    mean = statistics.fmean(differences)
    se = statistics.stdev(differences) / math.sqrt(len(differences))
    half = t_975(len(differences) - 1) * se
    return {
        "mean": mean,
        "se": se,
        "ci95": [mean - half, mean + half],  # Student's t interval over the seeds
        "below": sum(d < 0 for d in differences),
        "values": differences,
    }


def resolvable_difference(paired: list[dict]) -> dict | None:
    """The smallest paired difference a run of n seeds resolves at 95 %: the half-width t_{n-1}·s/√n of
    the interval around a difference, with s the pooled (root-mean-square) standard deviation of the
    methods' paired differences. A mean difference smaller than this is a tie for a method of typical
    spread; None without paired differences."""
    if not paired:
        return None
    seeds = len(paired[0]["values"])
    pooled = math.sqrt(statistics.fmean(statistics.variance(p["values"]) for p in paired))
    return {"half_width": t_975(seeds - 1) * pooled / math.sqrt(seeds), "sd": pooled, "seeds": seeds}


# two-sided 95 % quantiles of Student's t, 1 to 30 degrees of freedom (any statistics table)
_T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145)
_T_975 += (2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048)
_T_975 += (2.045, 2.042)


def t_975(df: int) -> float:
    """Student's t quantile 0.975 for `df` degrees of freedom: the table up to 30, then the Cornish–Fisher
    expansion around the normal quantile (within 1e-3 there), so no SciPy is needed."""
    if df <= len(_T_975):
        return _T_975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
