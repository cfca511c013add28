"""The validation split (`data.val`): carved out of the training split only, deterministic and disjoint;
`best.pt` is chosen on it, and the test split is not read before the last epoch."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import pytest

from arctic_kd.cli import main
from arctic_kd.config import DataConfig, ValConfig, load_config
from arctic_kd.data.loaders import Loaders, make_loaders, protocol_samples
from arctic_kd.data.manifest import read_manifest
from arctic_kd.data.samples import PairedSample
from arctic_kd.data.validation import carve_validation
from arctic_kd.engine import stages, train
from arctic_kd.engine.checkpoint import load_checkpoint
from arctic_kd.errors import ArcticError, ConfigError
from tests.test_manifest import tiny_rows, write_manifest
from tests.trained import tiny_model_args


def _data(root: Path, **settings) -> DataConfig:
    return DataConfig(root=str(root), person_crop=False, workers=0, **settings)


def test_cross_subject_validation_holds_out_whole_training_performers(tiny_dataset):
    config = _data(tiny_dataset)
    samples = protocol_samples(config, ("ir",))
    kept, held = carve_validation(samples.train, config)
    assert {s.subject for s in held} == {"P002"} and {s.subject for s in kept} == {"P001"}
    assert sorted(s.sample_id for s in kept + held) == sorted(s.sample_id for s in samples.train)
    assert not {s.sample_id for s in held} & {s.sample_id for s in samples.test}  # never the test split
    again = carve_validation(list(reversed(samples.train)), config)[1]
    assert sorted(s.sample_id for s in again) == sorted(s.sample_id for s in held)  # deterministic
    chosen = carve_validation(samples.train, _data(tiny_dataset, val=ValConfig(subjects=("P001",))))
    assert {s.subject for s in chosen[1]} == {"P001"}


def test_the_validation_subjects_never_reach_the_training_loader(tiny_dataset):
    loaders = make_loaders(_data(tiny_dataset, num_frames=4, ir_size=32), ("ir",), seed=0, progress=False)
    trained = {s.subject for s in loaders.train.dataset.samples}
    validated = {s.subject for s in loaders.val.dataset.samples}
    assert trained and validated and not trained & validated
    assert "P003" not in trained | validated  # the test performer
    off = make_loaders(_data(tiny_dataset, val=ValConfig(enabled=False)), ("ir",), seed=0, progress=False)
    assert off.val is None and len(off.train.dataset) == len(loaders.train.dataset) + len(loaders.val.dataset)


def _sample(number: int, label: int) -> PairedSample:
    return PairedSample(f"S{number:03d}", label, None, None, subject=f"P{number % 4}")


def test_other_protocols_hold_out_a_stratified_share_of_each_class():
    samples = [_sample(n, n % 3) for n in range(60)]  # 20 per class
    config = DataConfig(protocol="ntu60-xview", val=ValConfig(fraction=0.25))
    kept, held = carve_validation(samples, config)
    assert Counter(s.label for s in held) == {0: 5, 1: 5, 2: 5}
    assert {s.sample_id for s in kept}.isdisjoint(s.sample_id for s in held) and len(kept) == 45
    shuffled = carve_validation(sorted(samples, key=lambda s: s.sample_id[::-1]), config)[1]
    assert sorted(s.sample_id for s in shuffled) == sorted(s.sample_id for s in held)  # order-free
    with pytest.raises(
        ConfigError, match=r"data\.val\.subjects: ntu60-xview is not a cross-subject protocol"
    ):
        carve_validation(samples, dataclasses.replace(config, val=ValConfig(subjects=("P1",))))


def test_manifest_protocols_validate_by_subject_or_by_class(tiny_dataset, tmp_path):
    path = write_manifest(tmp_path / "lists", tiny_rows(tiny_dataset, tmp_path / "lists"))
    listing = read_manifest(path)
    xsub = DataConfig(dataset="manifest", manifest=str(path), protocol="manifest-xsub")
    train, _ = listing.split("manifest-xsub", ("ir",), ("P001", "P002"))
    kept, held = carve_validation(train, xsub)
    assert {s.subject for s in held} == {"P002"} and {s.subject for s in kept} == {"P001"}
    train, _ = listing.split("manifest-split", ("ir",))
    kept, held = carve_validation(train, dataclasses.replace(xsub, protocol="manifest-split"))
    assert Counter(s.label for s in held) == {0: 1, 1: 1} and len(kept) == len(train) - 2


def test_bad_validation_settings_are_one_line():
    with pytest.raises(ConfigError, match=r"data.val.fraction must be in \(0, 1\), got 0"):
        load_config(overrides=["data.val.fraction=0"])
    with pytest.raises(ArcticError, match=r"data\.val\.subjects: P009 not among the training subjects"):
        carve_validation([_sample(1, 0), _sample(2, 0)], DataConfig(val=ValConfig(subjects=("P009",))))
    with pytest.raises(ArcticError, match="leaves 0 training and 2 validation samples"):
        carve_validation([_sample(1, 0), _sample(5, 0)], DataConfig(val=ValConfig(subjects=("P1",))))


class _Recorded:
    """A loader that notes each full pass over it in a shared list, so a test can see the order of reads."""

    def __init__(self, loader, name: str, reads: list[str]) -> None:
        self.loader, self.name, self.reads = loader, name, reads

    def __iter__(self):
        self.reads.append(self.name)
        return iter(self.loader)

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str):
        return getattr(self.loader, name)


@pytest.fixture
def recorded(monkeypatch) -> list[str]:
    """Every pass over a training, validation or test loader, in order."""
    reads: list[str] = []

    def loaders(*args, **kwargs) -> Loaders:
        made = make_loaders(*args, **kwargs)
        return Loaders(
            _Recorded(made.train, "train", reads),
            _Recorded(made.val, "val", reads) if made.val is not None else None,
            _Recorded(made.test, "test", reads),
            made.class_names,
        )

    monkeypatch.setattr(stages, "make_loaders", loaders)
    return reads


def _train(root: Path, out: Path, *settings: str) -> int:
    args = ["train", "--modality", "ir", "--out", str(out), "--set", f"data.root={root}"]
    settings = ("optim.epochs=3", "data.cache=false", "data.val.enabled=true", *settings)
    return main([*args, *tiny_model_args(*settings)])


def test_the_test_split_is_read_once_after_the_last_epoch(tiny_dataset, tmp_path, recorded):
    assert _train(tiny_dataset, tmp_path / "run") == 0
    assert recorded == ["train", "val", "train", "val", "train", "val", "test"]
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert ["test_top1" in line for line in lines] == [False, False, True]
    assert all(line["val_samples"] == 6 for line in lines)
    recorded.clear()
    assert _train(tiny_dataset, tmp_path / "every", "train.test_every_eval=true", "train.eval_every=2") == 0
    assert recorded == ["train", "train", "val", "test", "train", "val", "test"]


def test_best_pt_is_chosen_on_validation_never_on_test(tiny_dataset, tmp_path, monkeypatch):
    """Scripted scores: validation peaks at epoch 2, test at epoch 3; best.pt must hold epoch 2."""
    scores = {"val": iter([40.0, 80.0, 60.0]), "test": iter([10.0, 20.0, 90.0])}

    def scripted(run, batches, num_classes, split="test"):
        return scripted_scores(next(scores[split]))

    monkeypatch.setattr(train, "_evaluate", scripted)
    out = tmp_path / "run"
    assert _train(tiny_dataset, out, "train.test_every_eval=true") == 0
    best = load_checkpoint(out / "best.pt")
    assert best["epoch"] == 2 and best["validation"]["top1"] == 80.0
    assert load_checkpoint(out / "last.pt")["metrics"] == {**scripted_scores(90.0), "epoch": 3}


def scripted_scores(top1: float) -> dict:
    return {"top1": top1, "top5": 100.0, "mean_class": top1, "samples": 6, "confusion": [[3, 0], [0, 3]]}


def test_without_validation_there_is_no_best_pt(tiny_dataset, tmp_path, capsys, recorded):
    out = tmp_path / "run"
    assert _train(tiny_dataset, out, "data.val.enabled=false", "optim.epochs=2") == 0
    assert recorded == ["train", "test", "train", "test"]
    assert (out / "last.pt").is_file() and not (out / "best.pt").exists()
    assert "no best.pt: no validation split" in capsys.readouterr().out
