"""How every worker process of the project starts: never as a plain fork of a process that may have decoded.

A forked child inherits the parent's FFmpeg and OpenCV thread state mid-use. With PyAV 18.1.1, a DataLoader
worker forked after its parent converted one frame deadlocks in swscale's teardown (`pthread_cond_destroy`)
and the run hangs without a word; any process can have decoded before its loader starts (`arctic check`,
a report, a user's notebook). Workers therefore come from a fork server: a fresh interpreter that has only
imported modules, never decoded, and forks each worker from that clean state. The server imports what the
parent has imported of arctic_kd (torch with it), so it starts once per process in a second or two and each
worker after that in milliseconds. Where the platform has no fork server (Windows), workers are spawned.
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.context import BaseContext
from typing import TypeVar

PACKAGE = __name__.split(".")[0]
# what every loader worker needs (torch, numpy, PyAV, OpenCV come with it), whoever started the server
WORKER_MODULES = (f"{PACKAGE}.data.dataset",)

Item = TypeVar("Item")
Result = TypeVar("Result")


def worker_context() -> BaseContext:
    """The multiprocessing context for DataLoader workers and process pools."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # read when the server starts (the first worker of this process); later calls change nothing
    context.set_forkserver_preload(sorted({*WORKER_MODULES, *_imported_modules()}))
    return context


def map_in_workers(
    function: Callable[[Item], Result], items: Iterable[Item], workers: int
) -> Iterator[Result]:
    """`function` of each item, in order: in this process with `workers` ≤ 1, else in a process pool."""
    if workers <= 1:
        yield from map(function, items)
        return
    with ProcessPoolExecutor(workers, mp_context=worker_context()) as pool:
        yield from pool.map(function, items, chunksize=1)


def _imported_modules() -> list[str]:
    """This package's modules that the parent has imported (a worker then finds them loaded), but never a
    `__main__`, which would run a command in the server."""
    return sorted(
        name
        for name in sys.modules
        if (name == PACKAGE or name.startswith(PACKAGE + ".")) and not name.endswith(".__main__")
    )


def next_from_workers(items: Iterator[Result], failure: Callable[[str], Exception]) -> Result | None:
    """The next item of a DataLoader's iterator (None after the last); a worker that timed out or died
    becomes `failure(torch's words)`, which names what was being read."""
    try:
        return next(items, None)
    except RuntimeError as error:
        if not str(error).startswith("DataLoader "):  # torch's words for a worker timeout or death
            raise
        raise failure(str(error)) from None
