"""The demo's results table: gap arithmetic and one row per method."""

from __future__ import annotations

import math

import pytest

from arctic_kd.demo import Row, gap_recovered, table


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
