"""Decode each video once and keep it in memory, shrunk: the small-dataset shortcut past the decoder.

On a laptop CPU, decoding dominates training a small 3-D CNN; a few hundred short synthetic videos fit
in memory once shrunk to about the clip size, after which an epoch costs only crops and resizes. The
cache is filled in parallel up front (`preload`) and read by a `PairedClipDataset` through `open`,
which returns the same interface as a `VideoReader`. (For real datasets, see `arctic prepare`'s store.)
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
from torch.utils.data import DataLoader, Dataset

from arctic_kd.data.frames import open_frames
from arctic_kd.data.workers import next_from_workers, worker_context
from arctic_kd.errors import DataError
from arctic_kd.progress import progress_bar


class DecodedVideo:
    """A whole video in memory, answering like a `VideoReader`: `width`/`height` are the file's, so pixel
    positions (skeleton joints) still map to fractions of the frame; the frames themselves are shrunk."""

    def __init__(self, path: Path, frames: np.ndarray, fps: float, width: int, height: int) -> None:
        self.path = path
        self.frames = frames
        self.fps = fps
        self.num_frames = len(frames)
        self.width, self.height = width, height

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    def read(self, indices, gray: bool = False) -> np.ndarray:
        return self.frames[np.asarray(indices)]

    def __enter__(self) -> DecodedVideo:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass


def decode_shrunk(path: Path, gray: bool, short_side: int) -> DecodedVideo:
    """Every frame of `path`, resized so that its short side is `short_side` (never enlarged)."""
    with open_frames(path) as video:
        frames = video.read(range(video.num_frames), gray=gray)
        fps = video.fps
    height, width = frames.shape[1:3]
    scale = short_side / min(height, width)
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
        frames = frames.reshape(len(frames), size[1], size[0], -1)
    return DecodedVideo(path, np.ascontiguousarray(frames), fps, width, height)


class FrameCache:
    """Shrunk, fully decoded videos by (path, grey?). Bad files are not cached: opening them raises again."""

    def __init__(self, short_side: int) -> None:
        self.short_side = short_side
        self._videos: dict[tuple[Path, bool], DecodedVideo] = {}

    def __len__(self) -> int:
        return len(self._videos)

    @property
    def nbytes(self) -> int:
        return sum(v.frames.nbytes for v in self._videos.values())

    def open(self, path: Path, gray: bool) -> DecodedVideo:
        key = (Path(path), gray)
        if key not in self._videos:
            self._videos[key] = decode_shrunk(key[0], gray, self.short_side)
        return self._videos[key]

    def preload(
        self,
        videos: Iterable[tuple[Path, bool]],
        workers: int = 0,
        progress: bool = True,
        worker_timeout: float = 300.0,
    ) -> None:
        """Decode (path, grey?) videos in `workers` processes; failures are left for `open` to report. A
        worker silent for `worker_timeout` seconds (0: no limit) is an error naming the video."""
        todo = [(Path(p), g) for p, g in dict.fromkeys(videos) if (Path(p), g) not in self._videos]
        if not todo:
            return  # no workers to start
        jobs = _DecodeJobs(todo, self.short_side)
        options = {"multiprocessing_context": worker_context(), "timeout": worker_timeout} if workers else {}
        loader = iter(DataLoader(jobs, batch_size=None, num_workers=workers, collate_fn=_identity, **options))
        for key in progress_bar(todo, desc="decode", unit="video", enabled=progress):
            video = next_from_workers(
                loader,
                lambda cause, path=key[0]: DataError(path, f"decoding it into data.cache stopped: {cause}"),
            )
            if video is not None:
                self._videos[key] = video


class _DecodeJobs(Dataset):
    def __init__(self, videos: list[tuple[Path, bool]], short_side: int) -> None:
        self.videos = videos
        self.short_side = short_side

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> DecodedVideo | None:
        try:
            return decode_shrunk(*self.videos[index], self.short_side)
        except DataError:
            return None


def _identity(item):
    return item
