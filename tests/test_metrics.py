"""Top-1, top-5, mean class accuracy and the confusion matrix against a table made by hand.

Seven classes, unbalanced, one of them without test samples, and a label at exactly rank 5: top-1, top-5
and mean class accuracy all differ, so a top-5 computed as top-4, a mean over every class or a confusion
matrix transposed gives another number.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from arctic_kd.engine import evaluate as evaluate_module
from arctic_kd.engine.distributed import DistContext
from arctic_kd.engine.evaluate import ScoreCounts, evaluate, evaluate_views, sum_over_processes

CLASSES = 7
# (label, top-1 prediction, rank of the label among the scores); class 6 has no test sample
TABLE = [
    (0, 0, 1),
    (0, 0, 1),
    (0, 0, 1),
    (0, 3, 6),  # label outside the top 5
    (1, 1, 1),
    (2, 4, 3),
    (2, 2, 1),
    (3, 5, 7),  # label last
    (4, 4, 1),
    (5, 0, 5),  # label at rank 5 exactly: a top-5 hit
]
# top-1: samples 0, 1, 2, 4, 6, 8 → 6/10; top-5: all but samples 3 and 7 → 8/10
# per class: 0: 3/4, 1: 1/1, 2: 1/2, 3: 0/1, 4: 1/1, 5: 0/1, 6: no samples (0, left out of the mean)
CONFUSION = [[0] * CLASSES for _ in range(CLASSES)]
for _label, _pred, _ in TABLE:
    CONFUSION[_label][_pred] += 1
PER_CLASS = [75.0, 100.0, 50.0, 0.0, 100.0, 0.0, 0.0]
MEAN_CLASS = 100 * (0.75 + 1 + 0.5 + 0 + 1 + 0) / 6


def scores_from_table() -> torch.Tensor:
    """Logits with the prediction first and the label at its rank; other classes fill in by index."""
    rows = []
    for label, pred, rank in TABLE:
        order = [pred] + [c for c in range(CLASSES) if c not in (pred, label)]
        if label != pred:
            order.insert(rank - 1, label)
        assert order[rank - 1] == label and len(order) == CLASSES
        row = torch.empty(CLASSES)
        row[order] = torch.arange(CLASSES, 0, -1, dtype=torch.float32)
        rows.append(row)
    return torch.stack(rows)


LABELS = torch.tensor([label for label, _, _ in TABLE])


def check_single_view(report: dict) -> None:
    assert report["confusion"] == CONFUSION
    assert report["samples"] == 10 and report["top5_hits"] == 8
    assert report["top1"] == pytest.approx(60.0)
    assert report["top5"] == pytest.approx(80.0)
    assert report["mean_class"] == pytest.approx(MEAN_CLASS)  # 54.17, not 46.43 (over all seven)
    assert report["per_class"] == pytest.approx(PER_CLASS)


def test_score_counts_against_a_hand_made_confusion_matrix():
    counts = ScoreCounts(CLASSES)
    scores = scores_from_table()
    counts.add(scores[:6], LABELS[:6])  # two batches add up
    counts.add(scores[6:], LABELS[6:])
    check_single_view(counts.report())


class Lookup(nn.Module):
    """A "network" whose clip is its own logits: clips (N, 1, 1, 1, K) → (N, K)."""

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return clips.flatten(1)


def as_clips(logits: torch.Tensor) -> torch.Tensor:
    return logits.view(len(logits), 1, 1, 1, CLASSES)


def test_evaluate_reports_the_hand_made_table():
    scores = scores_from_table()
    batches = [
        {"ir": as_clips(scores[:4]), "label": LABELS[:4]},
        {"ir": as_clips(scores[4:]), "label": LABELS[4:]},
    ]
    check_single_view(evaluate(Lookup(), batches, "ir", CLASSES, torch.device("cpu")))


def test_multiview_metrics_of_averaged_probabilities_against_the_hand_made_table():
    """View 0 is the table (logits 7 … 1 down its ranking); view 1 is flat except on three samples.
    Sample 0: view 1 is sure of class 6 (logit 20), which then wins (≈ 0.50 against 0.32). Samples 3 and
    7: view 1 gives the label logit 3 (probability 0.77); averaged probabilities pick the label (0.39
    against 0.34 for view 0's choice), averaged logits would not (2.5 or 1.5 against 3.5). A flat view adds
    the same 1/7 to every class, so elsewhere view 0's order stays."""
    view0 = scores_from_table()
    view1 = torch.zeros(10, CLASSES)
    view1[3, 0] = view1[7, 3] = 3.0  # samples 3 and 7 become right
    view1[0, 6] = 20.0  # sample 0 becomes wrong (class 6), its label still second
    clips = torch.stack([as_clips(view0), as_clips(view1)], 1)  # (N, V, 1, 1, 1, K)
    batches = [{"ir": clips[:5], "label": LABELS[:5]}, {"ir": clips[5:], "label": LABELS[5:]}]
    metrics = evaluate_views(Lookup(), batches, "ir", CLASSES, torch.device("cpu"))
    check_single_view(metrics)  # the top level is view 0's
    assert metrics["views"] == 2
    multiview = metrics["multiview"]
    expected = [row[:] for row in CONFUSION]
    expected[0][0] -= 1
    expected[0][6] += 1
    expected[0][3] -= 1
    expected[0][0] += 1
    expected[3][5] -= 1
    expected[3][3] += 1
    assert multiview["confusion"] == expected
    # top-1: samples 1, 2, 3, 4, 6, 7, 8 → 7/10; top-5: every label is now in its top 5
    assert multiview["top1"] == pytest.approx(70.0) and multiview["top5"] == pytest.approx(100.0)
    # per class: 0: 3/4 (samples 1, 2, 3), 1: 1, 2: 1/2, 3: 1, 4: 1, 5: 0
    assert multiview["mean_class"] == pytest.approx(100 * 4.25 / 6)


def test_reports_of_several_processes_add_up(monkeypatch):
    """Two processes with the same share: counts double, rates stay (the all-reduce itself is tested
    under torchrun in test_distributed.py)."""
    counts = ScoreCounts(CLASSES)
    counts.add(scores_from_table(), LABELS)
    monkeypatch.setattr(evaluate_module.distributed, "all_sum", lambda tensor, context: tensor * 2)
    summed = sum_over_processes(counts.report(), DistContext(0, 2, torch.device("cpu")))
    assert summed["confusion"] == [[2 * v for v in row] for row in CONFUSION]
    assert summed["samples"] == 20 and summed["top5_hits"] == 16
    assert summed["top1"] == pytest.approx(60.0) and summed["mean_class"] == pytest.approx(MEAN_CLASS)
    alone = sum_over_processes(counts.report(), DistContext(0, 1, torch.device("cpu")))
    assert alone == counts.report()


def test_one_sample_and_no_sample():
    one = ScoreCounts(CLASSES)
    one.add(scores_from_table()[:1], LABELS[:1])
    report = one.report()
    assert (report["top1"], report["top5"], report["mean_class"], report["samples"]) == (
        100.0,
        100.0,
        100.0,
        1,
    )
    empty = ScoreCounts(CLASSES).report()  # every test clip skipped: zeros, not a division by zero
    assert (empty["top1"], empty["top5"], empty["mean_class"], empty["samples"]) == (0.0, 0.0, 0.0, 0)
