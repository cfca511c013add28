"""Videos stored as folders of per-frame images (PKU-MMD's IR in some releases), read like a video file.

`open_frames` is the one door the dataset and the frame cache use: a folder opens as a `FrameFolder`, a file
as a `VideoReader`; both answer `num_frames`, `fps`, `width`, `height`, `duration`, `read(indices, gray)` and
`frames(start, stop, gray)`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from arctic_kd.data.video import VideoReader, checked_frame_indices
from arctic_kd.errors import DataError

FRAME_FOLDER_FPS = 30.0  # image folders carry no frame rate; Kinect v2 (NTU, PKU-MMD) records at 30 fps
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_NUMBER = re.compile(r"(\d+)")


def open_frames(path: str | Path, threads: int = 1) -> VideoReader | FrameFolder:
    """A reader for a video file or for a folder of frame images."""
    path = Path(path)
    return FrameFolder(path) if path.is_dir() else VideoReader(path, threads)


class FrameFolder:
    """The images of one folder as the frames of a video, in the order of the numbers in their names.

    Numeric order, so `9.png` comes before `10.png` whether or not names are zero-padded. 16-bit images
    (raw Kinect IR) keep their high byte, as 8-bit IR videos do.
    """

    def __init__(self, path: str | Path, fps: float = FRAME_FOLDER_FPS) -> None:
        self.path = Path(path)
        self.fps = fps
        self.files = _frame_files(self.path)
        first = self._image(0)
        self.height, self.width = first.shape[:2]
        self.num_frames = len(self.files)

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    def read(self, indices: Sequence[int], gray: bool = False) -> np.ndarray:
        """Frames at `indices`: uint8 (N, H, W, 3) RGB, or (N, H, W, 1) grey, like `VideoReader.read`."""
        wanted = checked_frame_indices(indices, self.num_frames)
        frames = {i: _convert(self._image(i), gray) for i in set(wanted.tolist())}
        shapes = {f.shape for f in frames.values()}
        if len(shapes) > 1:
            raise DataError(self.path, f"frame images differ in size: {sorted(shapes)}")
        return np.stack([frames[i] for i in wanted.tolist()])

    def frames(self, start: int, stop: int, gray: bool = False) -> Iterator[np.ndarray]:
        """Frames start … stop − 1 one at a time, like `VideoReader.frames` (`arctic prepare`'s pass)."""
        for index in checked_frame_indices(range(start, stop), self.num_frames).tolist():
            yield _convert(self._image(index), gray)

    def _image(self, index: int) -> np.ndarray:
        path = self.files[index]
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise DataError(path, "not a readable image")
        if image.dtype == np.uint16:
            image = (image >> 8).astype(np.uint8)
        if image.dtype != np.uint8:
            raise DataError(path, f"unsupported pixel type {image.dtype} (expected 8- or 16-bit)")
        return image

    def close(self) -> None:
        """Nothing stays open between reads; here so that both readers can be used alike."""

    def __enter__(self) -> FrameFolder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _frame_files(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    if not files:
        raise DataError(folder, f"no frame images ({', '.join(IMAGE_SUFFIXES)}) in the folder")
    return sorted(files, key=_frame_order)


def _frame_order(path: Path) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in _NUMBER.split(path.stem))


def _convert(image: np.ndarray, gray: bool) -> np.ndarray:
    """OpenCV's BGR(A) or grey image as RGB (H, W, 3) or grey (H, W, 1)."""
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if gray:
        return (cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image)[..., None]
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB if image.ndim == 3 else cv2.COLOR_GRAY2RGB)
