"""The figures of `benchmarks/bench_agreement.py`, on hand-made per-clip agreements."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

from arctic_kd.distill.agreement import ClipAgreement

_SPEC = importlib.util.spec_from_file_location(
    "bench_agreement", Path(__file__).parents[1] / "benchmarks" / "bench_agreement.py"
)
bench_agreement = sys.modules["bench_agreement"] = importlib.util.module_from_spec(_SPEC)  # for its dataclass
_SPEC.loader.exec_module(bench_agreement)


def clips(correlation: list[float], correct: list[bool]) -> ClipAgreement:
    return ClipAgreement(torch.tensor(correlation), torch.zeros(len(correct)), torch.tensor(correct))


def test_halves_split_at_the_median_agreement():
    run = clips([0.9, 0.1, 0.8, 0.2], [True, False, True, True])
    assert bench_agreement.top1(bench_agreement.agreement_half(run, least=True)) == 50.0  # 0.1, 0.2
    assert bench_agreement.top1(bench_agreement.agreement_half(run, least=False)) == 100.0  # 0.9, 0.8


def test_a_pair_counts_fixed_and_broken_clips_and_the_top_quarter_of_gains():
    first = clips([0.9, 0.5, 0.5, 0.5, 0.9, 0.5, 0.5, 0.5], [True, True, False, True] * 2)
    second = clips([0.1, 0.5, 0.5, 0.5, 0.1, 0.5, 0.5, 0.5], [False, True, True, True] * 2)
    gain, change = bench_agreement.paired_changes([(first, second)])
    assert gain.tolist() == pytest.approx([0.8, 0, 0, 0] * 2) and change.tolist() == [1, 0, -1, 0] * 2
    table = bench_agreement.pair_table({"a": {0: first}, "b": {0: second}}, {"a": "A", "b": "B"}, "a", "b")
    row = table.splitlines()[-1].split(" | ")
    assert row[1:4] == ["1", "8", "+0.200"]
    assert row[4] == f"{bench_agreement.pearson(gain, change):.3f}"
    assert row[5:] == ["+100.0", "2 / 2 |"]  # the two clips that gained most were both fixed


def test_pearson_is_nan_where_nothing_changes():
    assert math.isnan(bench_agreement.pearson(torch.tensor([0.1, 0.2]), torch.zeros(2)))
