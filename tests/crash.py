"""Run the `arctic` command and SIGKILL it at a chosen training step: a crash at a known point, not a race.

    python -m tests.crash EPOCH BATCH arctic-arguments...

kills the process just before batch BATCH (from 0) of epoch EPOCH is trained, so epoch EPOCH has taken
BATCH optimizer steps (and saved what `train.checkpoint_every` asks for); BATCH 0 of epoch 2 is the
boundary right after epoch 1 was tested, logged and saved.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from typing import Any

from arctic_kd.cli import main
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


if __name__ == "__main__":
    crash_at(int(sys.argv[1]), int(sys.argv[2]))
    sys.exit(main(sys.argv[3:]))
