"""A run folder belongs to one run: claimed (never silently overwritten) and locked against a second writer.

`claim_run_folder` is what `arctic train` / `distill` do with `--out` before any work: an existing run in
the folder is refused unless the user continues it (`--resume`) or replaces it (`--force`, which says what
it removes), and a lock file naming the owner's pid and host keeps a second process out while the run
writes. A lock whose process is gone (killed, even with -9) is stale and taken over with a note, so
`--resume` after a crash needs nothing by hand.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from arctic_kd.engine.distributed import is_main_process
from arctic_kd.errors import ArcticError, os_error

LOCK_NAME = ".arctic.lock"
# what a training run writes into its folder: what `--force` removes, and what marks a folder as a run's
RUN_FILES = (
    "last.pt",
    "best.pt",
    "metrics.jsonl",
    "multiview.json",
    "samples.json",
    "curves.png",
    "tensorboard",
    ".last.pt.partial",
    ".best.pt.partial",
)
RUN_MARKERS = ("last.pt", "best.pt", "metrics.jsonl")
_UNWRITTEN_LOCK_GRACE_S = 10.0  # a lock file still empty after this long was left by a process that died


@contextlib.contextmanager
def claim_run_folder(out: Path, resume: bool = False, force: bool = False) -> Iterator[Path]:
    """Create (or reuse) `out` for one run, hold its lock while the body runs, release it afterwards.

    Under torchrun only rank 0 claims it (one lock per run); the other processes write into the folder it
    holds."""
    if not is_main_process():
        yield out
        return
    if resume and force:
        raise ArcticError("--resume continues the run in --out and --force replaces it: give one of them")
    _make_folder(out)
    lock = out / LOCK_NAME
    _acquire(lock)
    try:
        existing = [name for name in RUN_FILES if (out / name).exists()]
        if any(name in RUN_MARKERS for name in existing) and not resume:
            if not force:
                raise ArcticError(
                    f"{out} already holds a run ({describe_run(out)}): --resume continues it, --force "
                    "replaces it, or choose another --out"
                )
            _remove(out, existing)
        yield out
    finally:
        _release(lock)


def describe_run(out: Path) -> str:
    """A few words on the run in `out`, so a refusal says what it protects."""
    parts = []
    metrics = out / "metrics.jsonl"
    if metrics.is_file():
        with contextlib.suppress(OSError):
            parts.append(f"metrics.jsonl with {len(metrics.read_text().splitlines())} epoch line(s)")
    parts += [name for name in ("last.pt", "best.pt") if (out / name).is_file()]
    return ", ".join(parts) or "run files"


def _make_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ArcticError(f"{out}: exists and is not a folder (--out names the run folder)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise os_error(error, out, "cannot create the run folder") from None


def _remove(out: Path, names: list[str]) -> None:
    print(
        f"arctic: --force: removing {', '.join(str(out / n) for n in names)} of the earlier run",
        file=sys.stderr,
    )
    for name in names:
        path = out / name
        try:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        except OSError as error:
            raise os_error(error, path, "cannot remove it") from None


def _owner() -> dict:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": _process_start(os.getpid()),
        "since": time.time(),
    }


def _acquire(lock: Path) -> None:
    """Create the lock file exclusively; a stale one (its process gone) is replaced once."""
    for attempt in range(2):
        try:
            descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if attempt == 0 and _is_stale(lock):
                with contextlib.suppress(FileNotFoundError):
                    lock.unlink()
                continue
            raise ArcticError(f"{lock.parent}: {_held_by(lock)}") from None
        except OSError as error:
            raise os_error(error, lock, "cannot create the run's lock file") from None
        with os.fdopen(descriptor, "w") as file:
            json.dump(_owner(), file)
        return


def _read_owner(lock: Path) -> dict | None:
    try:
        owner = json.loads(lock.read_text())
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) and isinstance(owner.get("pid"), int) else None


def _is_stale(lock: Path) -> bool:
    """Whether the lock's owner has certainly gone: same host and its process no longer runs (or a lock
    file left unwritten for longer than a writer ever takes)."""
    owner = _read_owner(lock)
    if owner is None:
        try:
            age = time.time() - lock.stat().st_mtime
        except FileNotFoundError:
            return True
        stale = age > _UNWRITTEN_LOCK_GRACE_S
    else:
        stale = owner.get("host") == socket.gethostname() and not _running(owner["pid"], owner.get("started"))
    if stale:
        what = "an unreadable lock" if owner is None else f"the lock of pid {owner['pid']}, no longer running"
        print(f"arctic: note: {lock}: removing {what} (a run that was killed)", file=sys.stderr)
    return stale


def _held_by(lock: Path) -> str:
    owner = _read_owner(lock)
    if owner is None:
        return (
            f"locked by another process that is starting up ({lock.name}); try again, or choose another --out"
        )
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(owner.get("since", 0)))
    return (
        f"another arctic process is writing this run folder (pid {owner['pid']} on {owner.get('host')}, "
        f"since "
        f"{since}); wait for it or choose another --out (if that process is gone, delete {lock})"
    )


def _running(pid: int, started: float | None) -> bool:
    """Whether process `pid` runs, and is the one that took the lock (not a later process given its pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    return started is None or _process_start(pid) in (None, started)


def _process_start(pid: int) -> float | None:
    """The process's start time in clock ticks since boot (Linux), which a reused pid does not share."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return float(fields[19])


def _release(lock: Path) -> None:
    owner = _read_owner(lock)
    if owner is not None and owner["pid"] == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
