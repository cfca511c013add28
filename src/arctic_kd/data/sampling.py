"""Which frames a clip shows: TSN-style segment sampling in relative time, so that two cameras of different
frame counts (RGB and IR of one recording) are sampled at the same moments."""

from __future__ import annotations

import numpy as np


def segment_times(num_segments: int, rng: np.random.Generator | None, offset: float = 0.5) -> np.ndarray:
    """One relative time in [0, 1) per equal segment of the video.

    Training (`rng` given) draws a random moment inside each segment, so every epoch sees other frames while
    the clip still spans the whole action; testing (`rng` None) takes the same `offset` (a fraction of a
    segment, the centre by default) in every segment, deterministically.
    """
    if num_segments < 1:
        raise ValueError(f"num_segments must be at least 1, got {num_segments}")
    if not 0 <= offset < 1:
        raise ValueError(f"offset must be a fraction of a segment in [0, 1), got {offset}")
    offsets = rng.random(num_segments) if rng is not None else np.full(num_segments, offset)
    return (np.arange(num_segments) + offsets) / num_segments


def clip_offsets(num_clips: int) -> list[float]:
    """Where in each segment the `num_clips` test clips of a video sample it: evenly spaced, centre first.

    Clip j takes offset (0.5 + j / N) mod 1, so clip 0 is the single-clip test clip (segment centres) and
    the N clips together sample every segment at N evenly spaced moments; N = 2 gives mmaction2's
    `twice_sample` (centre and start of each segment).
    """
    if num_clips < 1:
        raise ValueError(f"test_clips must be at least 1, got {num_clips}")
    return [(0.5 + j / num_clips) % 1.0 for j in range(num_clips)]


def frame_indices(times: np.ndarray, num_frames: int, start: int = 0, end: int | None = None) -> np.ndarray:
    """The frame on screen at each relative time of the range [start, end) of a `num_frames` video."""
    end = num_frames if end is None else end
    if not 0 <= start < end <= num_frames:
        raise ValueError(f"frame range [{start}, {end}) is not inside a video of {num_frames} frames")
    times = np.asarray(times, dtype=np.float64)
    if times.size and (times.min() < 0 or times.max() >= 1):
        raise ValueError("relative times must lie in [0, 1)")
    return start + np.minimum(np.floor(times * (end - start)).astype(np.int64), end - start - 1)
