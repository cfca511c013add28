"""Video files through PyAV: the one place that knows about containers, codecs and frame indices."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.codec.context import Flags

from arctic_kd.errors import DataError


def write_video(
    path: str | Path, frames: Iterable[np.ndarray], fps: float = 30.0, quality: int = 4, codec: str = "mpeg4"
) -> None:
    """Encode uint8 frames (H×W×3 RGB or H×W grey) as an AVI, like NTU's MPEG-4 Part 2 files."""
    with VideoWriter(path, fps, quality, codec) as writer:
        for frame in frames:
            writer.write(frame)


class VideoWriter:
    """An AVI written frame by frame, for videos too long to hold in memory (PKU-MMD-like recordings).

    One encoder thread keeps the bitstream, and so the decoded frames, identical for identical input.
    `quality` is the MPEG-4 quantiser (2 = near lossless, 31 = worst).
    """

    def __init__(self, path: str | Path, fps: float = 30.0, quality: int = 4, codec: str = "mpeg4") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fps, self._quality, self._codec = fps, quality, codec
        self._container = av.open(str(self.path), mode="w")
        self._stream: av.VideoStream | None = None

    def write(self, frame: np.ndarray) -> None:
        if self._stream is None:
            self._stream = self._container.add_stream(self._codec, rate=round(self._fps))
            self._stream.height, self._stream.width = frame.shape[:2]
            self._stream.pix_fmt = "yuv420p"
            self._stream.thread_count = 1
            self._stream.codec_context.qscale = self._quality
            self._stream.codec_context.flags |= Flags.qscale | Flags.bitexact
        fmt = "gray" if frame.ndim == 2 else "rgb24"
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format=fmt)
        self._container.mux(self._stream.encode(video_frame))

    def close(self) -> None:
        """Flush the encoder and close the file; a video without frames is an error (and is closed)."""
        try:
            if self._stream is None:
                raise ValueError(f"{self.path}: no frames to write")
            self._container.mux(self._stream.encode())
        finally:
            self._container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, *exc_info: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._container.close()


def checked_frame_indices(indices: Sequence[int], num_frames: int) -> np.ndarray:
    """`indices` as an int64 array, checked to be a non-empty 1-D list of frames that exist: the contract of
    both `VideoReader.read` and `FrameFolder.read`, so a bad clip plan fails alike from a file or a folder."""
    wanted = np.asarray(indices, dtype=np.int64)
    if wanted.ndim != 1 or wanted.size == 0:
        raise ValueError(f"indices must be a non-empty 1-D sequence, got shape {wanted.shape}")
    if wanted.min() < 0 or wanted.max() >= num_frames:
        raise ValueError(f"frame indices must lie in [0, {num_frames}), got {wanted.min()}..{wanted.max()}")
    return wanted


# Seeking costs about one keyframe's decode; this close to the start, decoding from frame 0 is as cheap.
SEEK_MIN_FRAME = 16
# Real files may decode a frame or two fewer than their header lists; a larger shortfall means a damaged file.
MAX_MISSING_TAIL = 3


class VideoReader:
    """Random access to the frames of one video file, decoding only what a clip needs.

    The container is opened once, so several reads of a file (e.g. several test clips) share it. Every way a
    user's file can be unusable becomes a `DataError` naming the file.
    """

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        self.path = Path(path)
        self._container = _open_container(self.path)
        try:
            self._stream = _video_stream(self._container, self.path)
            if threads > 1:
                self._stream.thread_type = "AUTO"
                self._stream.thread_count = threads
            self._rate = _frame_rate(self._stream, self.path)
            self.fps = float(self._rate)
            self.width: int = self._stream.codec_context.width
            self.height: int = self._stream.codec_context.height
            self._start_pts: int = self._stream.start_time or 0
            self._at_start = True
            self.num_frames: int = self._stream.frames or self._count_packets()
            if self.num_frames == 0:
                raise DataError(self.path, "the video stream has no frames")
        except BaseException:
            self.close()
            raise

    @property
    def duration(self) -> float:
        """Seconds of video, from frame count and rate: what tells whether an RGB and an IR file pair up."""
        return self.num_frames / self.fps

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def read(self, indices: Sequence[int], gray: bool = False) -> np.ndarray:
        """Frames at `indices` (any order, repeats allowed): uint8 (N, H, W, 3) RGB, or (N, H, W, 1) luma."""
        wanted = checked_frame_indices(indices, self.num_frames)
        frames = dict(self._decode(sorted(set(wanted.tolist())), _Converter(gray)))
        return np.stack([frames[i] for i in wanted.tolist()])

    def frames(self, start: int, stop: int, gray: bool = False) -> Iterator[np.ndarray]:
        """Frames start … stop − 1 one at a time, as `read` returns them: for passes over a whole video
        (`arctic prepare`), where holding every decoded 1080p frame would take gigabytes."""
        if not 0 <= start < stop <= self.num_frames:
            raise ValueError(f"frame range [{start}, {stop}) is not inside [0, {self.num_frames})")
        for _, frame in self._decode(list(range(start, stop)), _Converter(gray)):
            yield frame

    def _decode(self, needed: list[int], convert: _Converter) -> Iterator[tuple[int, np.ndarray]]:
        """(index, frame) for the sorted unique `needed`: seek near the first when that saves work, decode
        from the start when it can't (also for whatever is left when a seek turns out to have missed)."""
        try:
            if needed[0] >= SEEK_MIN_FRAME and self._seek_before(needed[0]):
                done = 0
                try:
                    for item in self._collect(self._frames_after_seek(needed[0]), needed, convert):
                        done += 1
                        yield item
                    return
                except _SeekMissed:
                    needed = needed[done:]
            self._rewind()
            yield from self._collect(self._indexed_frames(position=0), needed, convert)
        except av.error.FFmpegError as error:
            raise DataError(self.path, f"cannot decode the video: {error}") from error

    def _count_packets(self) -> int:
        """Frame count for containers whose header has none: demuxing is cheap, decoding is not."""
        self._at_start = False
        try:
            return sum(1 for packet in self._container.demux(self._stream) if packet.size > 0)
        except av.error.FFmpegError as error:
            raise DataError(self.path, f"cannot read the video: {error}") from error

    def _seek_before(self, index: int) -> bool:
        """Seek to the keyframe at or before frame `index`; False when the file cannot seek."""
        target = self._start_pts + int(index / (self._rate * self._stream.time_base))
        try:
            self._container.seek(target, backward=True, stream=self._stream)
        except av.error.FFmpegError:
            return False
        self._at_start = False
        return True

    def _rewind(self) -> None:
        if not self._at_start:
            self._container.seek(self._start_pts, backward=True, stream=self._stream)
            self._at_start = True

    def _frames_after_seek(self, index: int) -> Iterator[tuple[int, av.VideoFrame]]:
        """Indexed frames after a seek, which must land at or before frame `index` with a pts to place it."""
        frames = self._indexed_frames(position=None)
        first = next(frames, None)
        if first is None or first[0] > index:
            raise _SeekMissed
        yield first
        yield from frames

    def _indexed_frames(self, position: int | None) -> Iterator[tuple[int, av.VideoFrame]]:
        """Decoded frames with their indices: from pts, or counting on from the last known index without one.

        `position` is the next frame's index when known (0 at the start), None after a seek.
        """
        self._at_start = False
        for frame in self._container.decode(self._stream):
            if frame.pts is not None:
                position = self._index_of(frame.pts)
            elif position is None:
                raise _SeekMissed
            yield position, frame
            position += 1

    def _index_of(self, pts: int) -> int:
        return round((pts - self._start_pts) * self._stream.time_base * self._rate)

    def _collect(
        self, frames: Iterator[tuple[int, av.VideoFrame]], needed: list[int], convert: _Converter
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Convert just the needed (sorted, unique) frames, and stop decoding after the last one.

        An index the stream skips gets the frame on screen at that moment, the previous one; so does a missing
        tail of at most MAX_MISSING_TAIL frames.
        """
        pending = iter(needed)
        target = next(pending, None)
        previous: tuple[int, av.VideoFrame] | None = None
        for index, frame in frames:
            while target is not None and target <= index:
                shown = frame if target == index or previous is None else previous[1]
                yield target, convert(shown)
                target = next(pending, None)
            if target is None:
                return
            previous = (index, frame)
        if previous is None:
            raise DataError(self.path, "no frame could be decoded")
        last_index, last_frame = previous
        if needed[-1] - last_index > MAX_MISSING_TAIL:
            raise DataError(
                self.path,
                f"only {last_index + 1} of the {self.num_frames} frames its header lists decode"
                " (truncated or damaged file)",
            )
        while target is not None:
            yield target, convert(last_frame)
            target = next(pending, None)


class _SeekMissed(Exception):
    """A seek landed past the target, or where frame indices can't be known: decode from the start."""


class _Converter:
    """Frame to ndarray, at most once per frame: converting 1080p frames costs as much as decoding them."""

    def __init__(self, gray: bool) -> None:
        self._gray = gray
        self._last: tuple[av.VideoFrame, np.ndarray] | None = None

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        if self._last is None or self._last[0] is not frame:
            if self._gray:
                array = frame.to_ndarray(format="gray")[..., None]
            else:
                array = frame.to_ndarray(format="rgb24")
            self._last = (frame, array)
        return self._last[1]


def _open_container(path: Path) -> av.container.InputContainer:
    if not path.is_file():
        raise DataError(path, "file not found" if not path.exists() else "not a file")
    if path.stat().st_size == 0:
        raise DataError(path, "file is empty")
    try:
        return av.open(str(path), mode="r")
    except (av.error.FFmpegError, OSError) as error:
        raise DataError(path, f"not a readable video ({_reason(error)})") from error


def _video_stream(container: av.container.InputContainer, path: Path) -> av.VideoStream:
    if not container.streams.video:
        raise DataError(path, "has no video stream")
    return container.streams.video[0]


def _frame_rate(stream: av.VideoStream, path: Path) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate:
        raise DataError(path, "the video stream has no frame rate")
    return Fraction(rate)


def _reason(error: Exception) -> str:
    """FFmpeg's words without the errno and repeated path that PyAV adds."""
    return getattr(error, "strerror", None) or str(error)
