"""The stream of batches over a `PairedClipDataset`: `ClipLoader` with its seeded pass order, sharding
between processes, exact resume position, worker handling and bad-sample policy.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from arctic_kd.data.dataset import PairedClipDataset
from arctic_kd.data.samples import MODALITIES, BadSample, BadSampleReport
from arctic_kd.data.workers import next_from_workers, worker_context
from arctic_kd.errors import ArcticError, DataError, shortlist


def collate_clips(items: Sequence[dict | BadSample]) -> dict:
    """Stack the good clips; bad samples travel in batch["bad"] (a batch may hold nothing else)."""
    good = [item for item in items if not isinstance(item, BadSample)]
    batch: dict = {"bad": [item for item in items if isinstance(item, BadSample)]}
    if good:
        for key in (*MODALITIES, "ir_from_rgb"):
            if key in good[0]:
                batch[key] = torch.stack([item[key] for item in good])
        batch["label"] = torch.tensor([item["label"] for item in good], dtype=torch.long)
        batch["sample_id"] = [item["sample_id"] for item in good]
    return batch


def check_batch_split(batch_size: int, world_size: int) -> None:
    """The global batch must split evenly between the processes of a launch."""
    if batch_size % world_size:
        raise ArcticError(
            f"data.batch_size: the global batch of {batch_size} does not split evenly between "
            f"{world_size} processes"
        )


class ClipLoader:
    """A DataLoader over a `PairedClipDataset`: yields only batches with clips, applies the bad-data policy.

    With `skip_bad` False the first bad sample raises its `DataError` here, in the main process; with True
    bad samples are dropped and recorded in `report`. The order of pass e and every clip's augmentation are
    drawn from (`seed`, e) alone: they do not depend on the number of workers or processes, and leave the
    global torch generator untouched. `shard` splits each pass between the processes of a distributed run;
    `state_dict` is the position in the stream of passes, so a resumed run reads exactly the batches it
    would have read.

    Workers come from `workers.worker_context` (never a fork of a process that may have decoded video), start
    once and serve every whole pass; a pass cut short (an error, or a loop left early) stops them, as does
    `close`, and the next pass starts new ones. A worker that sends nothing for `worker_timeout` seconds
    (0: wait forever), or dies, stops the pass with a `DataError` naming the batch it was reading.
    """

    def __init__(
        self,
        dataset: PairedClipDataset,
        batch_size: int,
        shuffle: bool = False,
        num_workers: int = 0,
        skip_bad: bool = False,
        pin_memory: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        worker_timeout: float = 300.0,
    ) -> None:
        self.skip_bad = skip_bad
        self.report = BadSampleReport()
        self.batch_size = batch_size  # global: split evenly between the processes of a distributed run
        self.worker_timeout = worker_timeout
        self._sampler = _PassOrder(len(dataset), batch_size, shuffle, drop_last, seed)
        self._dataset = _SeededItems(dataset)
        self._options = {
            "num_workers": num_workers,
            "collate_fn": collate_clips,
            "pin_memory": pin_memory,
            # only seeds the workers' base seed (each clip is seeded on its own); spares the global generator
            "generator": torch.Generator().manual_seed(seed),
        }
        if num_workers:
            self._options |= {
                "multiprocessing_context": worker_context(),
                "persistent_workers": True,
                "timeout": worker_timeout,
            }
        self._loader = self._build()
        self._position = (0, 0)  # (pass, batches of it already read)

    @property
    def dataset(self) -> PairedClipDataset:
        return self._dataset.dataset

    def shard(self, rank: int, world_size: int, equal_steps: bool) -> ClipLoader:
        """Read only process `rank`'s share of each pass: batch k of every process together make batch k of
        a single process. `equal_steps` (training) pads the share so every process takes as many steps as
        the others; without it (evaluation) each sample is read by exactly one process, none twice."""
        check_batch_split(self.batch_size, world_size)
        self._sampler.rank, self._sampler.world_size = rank, world_size
        self._sampler.equal_steps = equal_steps
        self._loader = self._build()
        return self

    def _build(self) -> DataLoader:
        return DataLoader(
            self._dataset,
            batch_size=self.batch_size // self._sampler.world_size,
            sampler=self._sampler,
            **self._options,
        )

    def state_dict(self) -> dict[str, int]:
        """Where the next pass starts: {"epoch": pass number, "batch": batches of it already read}."""
        return {"epoch": self._position[0], "batch": self._position[1]}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._position = (int(state["epoch"]), int(state["batch"]))

    def __len__(self) -> int:
        """Batches in a whole pass (of this process's share)."""
        return math.ceil(self._sampler.share_size() / self._loader.batch_size)

    def __iter__(self) -> Iterator[dict]:
        """Continue the current pass from the recorded position (a new pass after a finished one)."""
        epoch, start = self._position
        self._sampler.epoch, self._sampler.start = epoch, start * self._loader.batch_size
        batches = iter(self._loader)
        try:
            for number in itertools.count(start + 1):
                batch = next_from_workers(batches, functools.partial(self._worker_error, number))
                if batch is None:
                    break
                self._position = (epoch, number)
                for bad in batch.pop("bad"):
                    if not self.skip_bad:
                        raise bad.error()
                    self.report.add(bad)
                if "label" in batch:
                    yield batch
        except BaseException:  # an error, or a loop left early: stop the workers now, not at garbage
            del batches  # collection, which can find their queues closed and wait 5 s for each of them
            self.close()
            raise
        self._position = (epoch + 1, 0)

    def close(self) -> None:
        """Stop the workers now rather than at garbage collection; reading again starts new ones."""
        self._loader = self._build()

    def _worker_error(self, number: int, cause: str) -> DataError:
        """What a stuck or dead worker means for batch `number` of the pass, in torch's `cause` words."""
        samples = [
            self.dataset.samples[i] for i in self._sampler.batch_indices(number, self._loader.batch_size)
        ]
        shown = shortlist([s.sample_id for s in samples], 4)
        if "timed out" in cause:
            what = f"sent nothing for {self.worker_timeout:g} s (data.worker_timeout) while reading"
        else:  # it may have died on a later batch of its own: this is the first one that never came
            what = "died (killed, out of memory or crashed in native code) before sending"
        first = samples[0].path(self.dataset.modalities[0]) if samples else "data"
        return DataError(first, f"a loader worker {what} batch {number} (samples {shown})")


class _PassOrder(Sampler):
    """(dataset index, clip seed) pairs of one process's share of pass `epoch`, from position `start` on.

    Each clip's seed belongs to its place in the pass, not to the process that reads it, so augmentation is
    the same with any number of processes and workers.
    """

    def __init__(self, size: int, batch_size: int, shuffle: bool, drop_last: bool, seed: int) -> None:
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.shuffle, self.drop_last = shuffle, drop_last
        self.rank, self.world_size, self.equal_steps = 0, 1, False
        self.epoch, self.start = 0, 0

    def _pass(self) -> list[tuple[int, int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(self.size) if self.shuffle else np.arange(self.size)
        seeds = rng.integers(2**62, size=self.size)
        items = [(int(i), int(s)) for i, s in zip(order, seeds, strict=True)]
        if self.drop_last:
            return items[: len(items) // self.batch_size * self.batch_size]
        if self.equal_steps and items:  # repeat the first clips, as DistributedSampler does
            return list(itertools.islice(itertools.cycle(items), self.share_size() * self.world_size))
        return items

    def share_size(self) -> int:
        whole = self.size // self.batch_size * self.batch_size if self.drop_last else self.size
        if self.equal_steps or self.drop_last:
            return math.ceil(whole / self.world_size)
        return len(range(self.rank, whole, self.world_size))

    def __len__(self) -> int:
        return max(0, self.share_size() - self.start)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self._share()[self.start :])

    def batch_indices(self, number: int, batch_size: int) -> list[int]:
        """Dataset indices of batch `number` (counted from 1) of this process's share of the pass."""
        return [index for index, _ in self._share()[(number - 1) * batch_size : number * batch_size]]

    def _share(self) -> list[tuple[int, int]]:
        return self._pass()[self.rank :: self.world_size]


class _SeededItems(Dataset):
    """The dataset read with (index, seed) keys: each clip is made under its own torch seed, in a forked
    generator, so the global random state of the process (or worker) is never touched."""

    def __init__(self, dataset: PairedClipDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, int]) -> dict | BadSample:
        index, seed = item
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.dataset[index]
