"""The demo's results table and the bench's summary: gap arithmetic, mean ± std, resumability."""

from __future__ import annotations

import json
import math

import pytest

from arctic_kd.config import load_config
from arctic_kd.demo import Row, bench_table, gap_recovered, run_bench, table
from tests.conftest import TINY_SYNTH


def rows(teacher: float, ir: float, arctic: float) -> list[Row]:
    return [
        Row("RGB teacher", "rgb", teacher, 99.0, 10.0, teacher + 1),
        Row("IR only", "ir", ir, 98.0, 8.0, ir + 1),
        Row("ARCTIC", "ir", arctic, 97.0, 12.0, arctic + 2),
    ]


def test_gap_recovered_is_the_share_of_the_teacher_ir_gap():
    assert gap_recovered(rows(90.0, 70.0, 80.0)) == pytest.approx(50.0)
    assert gap_recovered(rows(90.0, 70.0, 65.0)) == pytest.approx(-25.0)
    assert math.isnan(gap_recovered(rows(60.0, 70.0, 80.0)))  # no gap to recover


def test_table_lists_each_method_once():
    text = table(rows(90.0, 70.0, 80.0))
    assert text.count("\n") == 4 and "| ARCTIC | IR | 80.0 | 97.0 | 82.0 | 12 s |" in text


def test_bench_reuses_finished_seeds_and_reports_mean_and_std(tiny_dataset, tmp_path):
    for seed, arctic in ((0, 80.0), (1, 84.0)):
        (tmp_path / f"seed{seed}").mkdir()
        (tmp_path / f"seed{seed}" / "rows.json").write_text(
            json.dumps([r.__dict__ for r in rows(90, 70, arctic)])
        )
    config = load_config(None, [f"data.root={tiny_dataset}"])
    summary = run_bench(config, tmp_path, TINY_SYNTH, [0, 1], progress=False)  # nothing left to train
    arctic = summary["methods"]["ARCTIC"]["top1"]
    assert arctic["mean"] == pytest.approx(82.0) and arctic["std"] == pytest.approx(math.sqrt(8.0))
    assert summary["gap_recovered"]["mean"] == pytest.approx(60.0)
    assert "| ARCTIC | IR | 82.0 ± 2.8 | 97.0 ± 0.0 | 84.0 ± 2.8 |" in (tmp_path / "bench.md").read_text()
    assert json.loads((tmp_path / "bench.json").read_text())["seeds"] == [0, 1]
    assert "ARCTIC recovers 60 ± 14 %" in bench_table(summary)
