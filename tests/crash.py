"""Run the `arctic` command and SIGKILL it at a chosen point: a crash at a known place, not a race.

    python -m tests.crash train EPOCH BATCH arctic-arguments...
    python -m tests.crash prepare SAMPLES arctic-arguments...

`train` kills the process just before batch BATCH (from 0) of epoch EPOCH is trained, so epoch EPOCH has
taken BATCH optimizer steps (and saved what `train.checkpoint_every` asks for); BATCH 0 of epoch 2 is the
boundary right after epoch 1 was tested, logged and saved. `prepare` kills `arctic prepare --workers 1`
(samples prepared in this process) just before it starts on the sample after SAMPLES finished ones.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from typing import Any

from arctic_kd.cli import main
from arctic_kd.data import store
from arctic_kd.engine import train


class _CrashingBar:
    """The training loop's progress bar, killing the process at the chosen batch of its epoch."""

    def __init__(self, bar: Any, crash_at: int | None) -> None:
        self.bar, self.crash_at = bar, crash_at

    def __iter__(self) -> Iterator[Any]:
        for index, batch in enumerate(self.bar):
            if index == self.crash_at:
                os.kill(os.getpid(), signal.SIGKILL)
            yield batch

    def __getattr__(self, name: str) -> Any:
        return getattr(self.bar, name)


def crash_at(epoch: int, batch: int) -> None:
    """Make every later training run of this process die at `batch` of `epoch`."""
    progress_bar = train.progress_bar

    def crashing(iterable: Any = None, *, desc: str = "", **kwargs: Any) -> Any:
        bar = progress_bar(iterable, desc=desc, **kwargs)
        return _CrashingBar(bar, batch if desc == f"epoch {epoch}" else None)

    train.progress_bar = crashing


def crash_after_samples(count: int) -> None:
    """Make `prepare_store` die when it starts on sample `count` + 1 (in-process preparation only)."""
    prepare_sample = store.prepare_sample
    started = 0

    def crashing(*args: Any, **kwargs: Any) -> Any:
        nonlocal started
        if started == count:
            os.kill(os.getpid(), signal.SIGKILL)
        started += 1
        return prepare_sample(*args, **kwargs)

    store.prepare_sample = crashing


if __name__ == "__main__":
    what, *where = sys.argv[1:]
    if what == "train":
        crash_at(int(where[0]), int(where[1]))
        sys.exit(main(where[2:]))
    crash_after_samples(int(where[0]))
    sys.exit(main(where[1:]))
