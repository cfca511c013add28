"""Loader workers are safe whatever their parent did, start once per loader, and never hang silently.

The regression: PyAV 18.1.1 deadlocks a DataLoader worker *forked* after its parent converted a frame
(swscale's slice threads are torn down in the child); every pass of such a loader hung forever. Workers now
come from a fork server (`data.workers`), and a stuck or dead worker is an error naming what it was reading.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from arctic_kd.data.cache import FrameCache
from arctic_kd.data.cliploader import ClipLoader
from arctic_kd.data.dataset import PairedClipDataset
from arctic_kd.data.loaders import paired_samples
from arctic_kd.data.ntu import index_ntu
from arctic_kd.data.samples import PairedSample
from arctic_kd.data.video import VideoReader
from arctic_kd.data.workers import map_in_workers, worker_context
from arctic_kd.errors import DataError


@pytest.fixture(scope="module")
def samples(tiny_dataset: Path) -> list[PairedSample]:
    return paired_samples(index_ntu(tiny_dataset).complete())[:6]


def decode_one_frame_here(sample: PairedSample) -> None:
    """What `arctic check`, a report or a notebook does before its loader starts workers."""
    with VideoReader(sample.rgb) as video:
        assert video.read([0]).shape[0] == 1


@pytest.mark.timeout(90)
def test_workers_read_raw_videos_after_the_parent_decoded(samples: list[PairedSample]) -> None:
    decode_one_frame_here(samples[0])
    loader = ClipLoader(PairedClipDataset(samples, num_frames=2), batch_size=2, num_workers=2)
    ids = [sample_id for batch in loader for sample_id in batch["sample_id"]]
    assert ids == [s.sample_id for s in samples]


@pytest.mark.timeout(90)
def test_the_frame_cache_decodes_in_workers_after_the_parent_decoded(samples: list[PairedSample]) -> None:
    decode_one_frame_here(samples[0])
    cache = FrameCache(short_side=32)
    cache.preload([(s.ir, True) for s in samples], workers=2, progress=False)
    assert len(cache) == len(samples)
    assert min(cache.open(s.ir, True).height for s in samples) > 0


def test_process_pools_come_from_the_same_safe_context(samples: list[PairedSample]) -> None:
    decode_one_frame_here(samples[0])
    assert list(map_in_workers(abs, [-1, -2, 3], workers=2)) == [1, 2, 3]
    assert worker_context().get_start_method() in {"forkserver", "spawn"}


def worker_pids() -> set[int]:
    return {p.pid for p in multiprocessing.active_children()}


def test_workers_start_once_and_serve_every_pass_until_closed(samples: list[PairedSample]) -> None:
    before = worker_pids()
    loader = ClipLoader(PairedClipDataset(samples, num_frames=2), batch_size=2, num_workers=2)
    list(loader)
    first = worker_pids() - before
    list(loader)
    assert len(first) == 2 and worker_pids() - before == first
    loader.close()
    assert not worker_pids() & first


def test_a_pass_left_half_read_continues_exactly_where_it_stopped(samples: list[PairedSample]) -> None:
    """Persistent workers prefetch; what they fetched for an abandoned pass must not leak into the next."""
    train_set = PairedClipDataset(samples, num_frames=2, train=True)

    def loader(workers: int) -> ClipLoader:
        return ClipLoader(train_set, batch_size=2, shuffle=True, num_workers=workers, seed=3)

    fresh = loader(0)
    expected = [batch["ir"] for _ in range(2) for batch in fresh]
    read = loader(2)
    got = [next(iter(read))["ir"]]  # one batch, then the pass is abandoned
    got += [batch["ir"] for _ in range(2) for batch in read]  # the rest of pass 0, then pass 1
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b)


class FaultyDataset(PairedClipDataset):
    """Hangs or dies reading one sample, as a worker deadlocked or crashed in native code would."""

    def __init__(self, samples: list[PairedSample], faulty: str, fault: str) -> None:
        super().__init__(samples, num_frames=2)
        self.faulty, self.fault = faulty, fault

    def __getitem__(self, index: int):
        if self.samples[index].sample_id == self.faulty:
            if self.fault == "hang":
                time.sleep(120)
            os.kill(os.getpid(), signal.SIGKILL)
        return super().__getitem__(index)


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("hang", "sent nothing for 3 s (data.worker_timeout) while reading batch 2 "),
        ("die", "died (killed, out of memory or crashed in native code) before sending batch 2 "),
    ],
)
@pytest.mark.timeout(60)
def test_a_stuck_or_dead_worker_is_an_error_naming_its_batch(
    samples: list[PairedSample], fault: str, words: str
) -> None:
    faulty = samples[2].sample_id  # batch 2 of 3
    dataset = FaultyDataset(samples, faulty, fault)
    loader = ClipLoader(dataset, batch_size=2, num_workers=2, worker_timeout=3)
    start = time.monotonic()
    with pytest.raises(DataError) as caught:
        list(loader)
    message = str(caught.value)
    assert message == f"{samples[2].rgb}: a loader worker {words}(samples {faulty}, {samples[3].sample_id})"
    assert time.monotonic() - start < 30
