"""Video files through PyAV: the one place that knows about containers, codecs and frame indices."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import av
import numpy as np
from av.codec.context import Flags


def write_video(
    path: str | Path, frames: Iterable[np.ndarray], fps: float = 30.0, quality: int = 4, codec: str = "mpeg4"
) -> None:
    """Encode uint8 frames (H×W×3 RGB or H×W grey) as an AVI, like NTU's MPEG-4 Part 2 files.

    One encoder thread keeps the bitstream, and so the decoded frames, identical for identical input.
    `quality` is the MPEG-4 quantiser (2 = near lossless, 31 = worst).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = None
        for frame in frames:
            if stream is None:
                stream = container.add_stream(codec, rate=int(round(fps)))
                stream.height, stream.width = frame.shape[:2]
                stream.pix_fmt = "yuv420p"
                stream.thread_count = 1
                stream.codec_context.qscale = quality
                stream.codec_context.flags |= Flags.qscale | Flags.bitexact
            fmt = "gray" if frame.ndim == 2 else "rgb24"
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format=fmt)))
        if stream is None:
            raise ValueError(f"{path}: no frames to write")
        container.mux(stream.encode())
