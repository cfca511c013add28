"""One stream of one prepared sample: its frames as separate JPEG images in a single file.

Why JPEG frames (measured in BENCHMARKS.md, "Clip store"): a training clip needs 8 frames spread over the
whole video, so random access matters more than compression ratio. Per-frame JPEG reads exactly those 8
frames (one seek and one small read each, ~0.1 ms to decode at 128²) at about a tenth of the size of raw
uint8 arrays (NTU60 at 128² would be ~280 GB as `.npy`); a re-encoded MP4 would be smaller still but
decodes from the previous keyframe for every frame it returns.

Layout: 8-byte magic, uint32 little-endian header length, a JSON header (fps, frame size, channels,
frame offsets), then the JPEG bytes back to back.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np

from arctic_kd.errors import DataError

STORED_SUFFIX = ".clip"
_MAGIC = b"ARCTCLP1"
_LENGTH = struct.Struct("<I")


def write_clip_file(path: Path, frames: Iterable[np.ndarray], fps: float, quality: int) -> int:
    """Encode uint8 (H, W, 3) RGB or (H, W, 1) grey frames; written beside `path`, then renamed into place
    (an interrupted write never leaves a readable half file). Returns the number of frames."""
    chunks, offsets = [], [0]
    shape: tuple[int, ...] = ()
    for frame in frames:
        shape = frame.shape
        image = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR) if frame.shape[-1] == 3 else frame[..., 0]
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise DataError(path, "JPEG encoding failed")
        chunks.append(encoded.tobytes())
        offsets.append(offsets[-1] + len(chunks[-1]))
    if not chunks:
        raise DataError(path, "no frames to store")
    height, width, channels = shape
    header = json.dumps(
        {"fps": fps, "width": width, "height": height, "channels": channels, "offsets": offsets}
    ).encode()
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "wb") as out:
        out.write(_MAGIC + _LENGTH.pack(len(header)) + header)
        for chunk in chunks:
            out.write(chunk)
    os.replace(partial, path)
    return len(chunks)


class StoredVideo:
    """Random access to the frames of a clip file, answering like a `VideoReader`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._file = open(self.path, "rb")  # noqa: SIM115 (closed by close / the context manager)
        except FileNotFoundError:
            raise DataError(
                self.path, "not in the clip store (see its report.json, or run arctic prepare again)"
            ) from None
        try:
            header = self._header()
        except BaseException:
            self._file.close()
            raise
        self.fps = float(header["fps"])
        self.width, self.height = int(header["width"]), int(header["height"])
        self._offsets = header["offsets"]
        self.num_frames = len(self._offsets) - 1

    def _header(self) -> dict:
        start = self._file.read(len(_MAGIC) + _LENGTH.size)
        if len(start) < len(_MAGIC) + _LENGTH.size or not start.startswith(_MAGIC):
            raise DataError(self.path, "not an arctic clip file")
        (length,) = _LENGTH.unpack(start[len(_MAGIC) :])
        try:
            header = json.loads(self._file.read(length))
        except ValueError:
            raise DataError(self.path, "damaged clip file header") from None
        self._base = len(start) + length
        return header

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    def read(self, indices: Sequence[int], gray: bool = False) -> np.ndarray:
        """Frames at `indices`: uint8 (N, H, W, 3) RGB or (N, H, W, 1) grey, as stored."""
        decoded: dict[int, np.ndarray] = {}
        for index in sorted(set(int(i) for i in indices)):
            if not 0 <= index < self.num_frames:
                raise ValueError(f"frame indices must lie in [0, {self.num_frames}), got {index}")
            start, stop = self._offsets[index], self._offsets[index + 1]
            self._file.seek(self._base + start)
            data = np.frombuffer(self._file.read(stop - start), np.uint8)
            # a truncated file reads short (cv2 asserts on an empty buffer): check before decoding
            image = (
                cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size and data.size == stop - start else None
            )
            if image is None:
                raise DataError(self.path, f"frame {index} does not decode (damaged clip file)")
            decoded[index] = image[..., None] if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        return np.stack([decoded[int(i)] for i in indices])

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> StoredVideo:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
