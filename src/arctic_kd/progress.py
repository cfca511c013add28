"""Progress bars that show on a terminal and stay out of logs and CI output."""

from __future__ import annotations

from tqdm import tqdm


def progress_bar(iterable=None, *, enabled: bool = True, **kwargs) -> tqdm:
    """A tqdm bar when `enabled` and standard error is a terminal; silent otherwise."""
    return tqdm(iterable, disable=None if enabled else True, dynamic_ncols=True, **kwargs)


def say(text: str) -> None:
    """Print a line without breaking a progress bar that is on screen."""
    tqdm.write(text)


_SAID: set[str] = set()


def say_once(text: str) -> None:
    """`say` a line the first time only: a notice about the machine, not the run, is news once per process
    (an `arctic bench` trains many runs in one)."""
    if text not in _SAID:
        _SAID.add(text)
        say(text)
