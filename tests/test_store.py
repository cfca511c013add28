"""`arctic prepare` and its clip store: resumable after SIGKILL, bad samples reported, clips as from raw."""

from __future__ import annotations

import dataclasses
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from arctic_kd.cli import main
from arctic_kd.config import DataConfig
from arctic_kd.data.dataset import PairedClipDataset
from arctic_kd.data.loaders import make_loaders, protocol_samples, stored_samples
from arctic_kd.data.store import SAMPLES_DIR, StoreSettings, prepare_store, sample_key
from arctic_kd.errors import DataError

ROOT = Path(__file__).resolve().parents[1]
PLAIN = {"rgb": ((0.0,) * 3, (1.0,) * 3), "ir": ((0.0,), (1.0,))}
# Mean absolute difference per clip, grey levels of 255: JPEG (quality 90) and a second resize at test time;
# random training crops add sub-pixel differences in where the crop is rounded, on noisy synthetic frames.
TOLERANCE = {False: 2.5, True: 8.0}
# ... and in the ARC warp, normalised units: training crops round to whole pixels in different frames
WARP_TOLERANCE = {False: 1e-4, True: 0.05}


@pytest.fixture(scope="module")
def store(tiny_dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("store") / "store"
    assert main(["prepare", str(tiny_dataset), "--out", str(out), "--workers", "2"]) == 0
    return out


def store_files(store: Path) -> dict[str, bytes]:
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*")) if p.is_file()}


def test_store_clips_equal_raw_clips_up_to_resize_and_jpeg(tiny_dataset, store):
    config = DataConfig(root=str(tiny_dataset))
    raw = protocol_samples(config, ("rgb", "ir"))
    stored = stored_samples(dataclasses.replace(config, store=str(store)), ("rgb", "ir"))
    assert [s.sample_id for s in raw.train] == [s.sample_id for s in stored.train]
    for train in (False, True):
        options = {"num_frames": 4, "normalization": PLAIN, "train": train}
        from_raw = PairedClipDataset(raw.train, **options)
        from_store = PairedClipDataset(stored.train, person_margin=None, **options)
        for i in range(0, len(raw.train), 3):
            torch.manual_seed(i)
            a = from_raw[i]
            torch.manual_seed(i)
            b = from_store[i]
            for modality in ("rgb", "ir"):
                assert float((a[modality] - b[modality]).abs().mean()) * 255 < TOLERANCE[train]
            torch.testing.assert_close(a["ir_from_rgb"], b["ir_from_rgb"], atol=WARP_TOLERANCE[train], rtol=0)


def test_training_reads_the_store(tiny_dataset, store):
    config = DataConfig(root=str(tiny_dataset), store=str(store), batch_size=4, workers=0, num_frames=4)
    train, _, _, class_names = make_loaders(config, ("rgb", "ir"), seed=0, progress=False)
    batch = next(iter(train))
    assert batch["rgb"].shape == (4, 3, 4, 112, 112) and batch["ir"].shape == (4, 1, 4, 112, 112)
    assert batch["ir_from_rgb"].shape == (4, 2, 3) and class_names
    with pytest.raises(DataError, match="person margin"):
        make_loaders(dataclasses.replace(config, person_margin=0.3), ("ir",), seed=0, progress=False)


def test_a_corrupt_video_is_reported_and_the_others_prepared(tiny_dataset, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(tiny_dataset, root)
    samples = protocol_samples(DataConfig(root=str(root)), ("rgb", "ir"))
    everything = samples.train + samples.test
    victim = everything[2]
    victim.rgb.write_bytes(b"\x00garbage" * 100)
    report = prepare_store(everything, tmp_path / "store", workers=2, progress=False)
    assert [(b.sample_id, b.path) for b in report.bad] == [(victim.sample_id, str(victim.rgb))]
    assert main(["prepare", str(root), "--out", str(tmp_path / "store"), "--workers", "0"]) == 1
    assert report.prepared == len(everything) - 1
    done = {p.name for p in (tmp_path / "store" / SAMPLES_DIR).glob("*.done")}
    assert done == {f"{sample_key(s.sample_id)}.done" for s in everything if s is not victim}
    assert victim.sample_id in (tmp_path / "store" / "report.json").read_text()
    # training skips (or stops at) it like any bad sample
    config = DataConfig(root=str(root), store=str(tmp_path / "store"), workers=0, skip_bad=True, batch_size=2)
    train, _, test, _ = make_loaders(config, ("ir",), seed=0, progress=False)
    for _ in train:
        pass
    for _ in test:
        pass
    assert set(train.report.samples | test.report.samples) == {victim.sample_id}


def test_a_store_made_with_other_settings_is_not_mixed(tiny_dataset, store):
    samples = protocol_samples(DataConfig(root=str(tiny_dataset)), ("rgb", "ir"))
    with pytest.raises(DataError, match="side 128 → 96"):
        prepare_store(samples.test, store, StoreSettings(side=96), progress=False)


def test_prepare_killed_midway_resumes_without_redoing_and_ends_identical(tiny_dataset, store, tmp_path):
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "arctic_kd", "prepare", str(tiny_dataset), "--out", str(out)]
    killed_after = 3  # samples finished before the SIGKILL, chosen (tests/crash.py), not raced
    crashing = [sys.executable, "-m", "tests.crash", "prepare", str(killed_after), *command[3:]]
    first = subprocess.run(
        [*crashing, "--workers", "1"], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert first.returncode == -signal.SIGKILL, first.stderr[-3000:]
    samples = out / SAMPLES_DIR
    finished = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in samples.iterdir() if p.name[0] != "."}
    done = len(list(samples.glob("*.done")))
    total = len(list((store / SAMPLES_DIR).glob("*.done")))
    assert done == killed_after < total
    assert not (out / "index.json").exists()

    second = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
    assert f"({total - done} prepared now, {done} already done)" in second.stdout
    for path in finished:
        if path.suffix == ".done":  # a finished sample is not touched again
            stem = path.name.removesuffix(".done")
            for part in (path, samples / f"{stem}.rgb.clip", samples / f"{stem}.ir.clip"):
                assert (part.stat().st_ino, part.stat().st_mtime_ns) == finished[part]
    assert store_files(out) == store_files(store)


def test_sample_keys_are_file_names():
    assert sample_key("S001C001P001R001A001") == "S001C001P001R001A001"
    odd = sample_key("rig/a b:1")
    assert "/" not in odd and " " not in odd and odd != sample_key("rig/a b:2")
    assert np.unique([sample_key(f"x/{i}") for i in range(50)]).size == 50


def test_streamed_frames_are_the_frames_read_returns(tmp_path):
    from arctic_kd.data.video import VideoReader, write_video

    rng = np.random.default_rng(0)
    write_video(tmp_path / "v.avi", [rng.integers(0, 256, (24, 32, 3), dtype=np.uint8) for _ in range(40)])
    with VideoReader(tmp_path / "v.avi") as video:
        for start, stop in ((0, 40), (25, 31)):  # from the start, and after a seek
            streamed = np.stack(list(video.frames(start, stop, gray=True)))
            assert np.array_equal(streamed, video.read(range(start, stop), gray=True))
