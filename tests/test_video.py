"""VideoReader: header facts, random access equal to sequential decoding, decoding only what is needed, and a
clear DataError for every kind of unusable file."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from arctic_kd.data.video import MAX_MISSING_TAIL, VideoReader, write_video
from arctic_kd.errors import DataError

NUM_FRAMES = 100


def textured_frames(num_frames: int, height: int = 48, width: int = 64) -> list[np.ndarray]:
    """Frames that differ everywhere from each other, so a wrong frame can't pass for the right one."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return [np.roll(base, shift=3 * k, axis=1) // 2 + np.uint8(k) for k in range(num_frames)]


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    write_video(path, textured_frames(NUM_FRAMES))
    return path


@pytest.fixture(scope="module")
def all_frames(video: Path) -> np.ndarray:
    with VideoReader(video) as reader:
        return reader.read(range(NUM_FRAMES))


def packet_offsets(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        return [p.pos for p in container.demux(container.streams.video[0]) if p.size > 0]


class CountingContainer:
    """Stands in for a PyAV container to count decoded frames and ndarray conversions."""

    def __init__(self, container: av.container.InputContainer) -> None:
        self._container = container
        self.decoded = 0
        self.converted = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._container, name)

    def decode(self, *args: object, **kwargs: object):
        for frame in self._container.decode(*args, **kwargs):
            self.decoded += 1
            yield CountingFrame(frame, self)


class CountingFrame:
    def __init__(self, frame: av.VideoFrame, owner: CountingContainer) -> None:
        self._frame = frame
        self._owner = owner

    def __getattr__(self, name: str) -> object:
        return getattr(self._frame, name)

    def to_ndarray(self, **kwargs: object) -> np.ndarray:
        self._owner.converted += 1
        return self._frame.to_ndarray(**kwargs)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> list[CountingContainer]:
    opened: list[CountingContainer] = []
    real_open = av.open

    def counting_open(*args: object, **kwargs: object) -> CountingContainer:
        opened.append(CountingContainer(real_open(*args, **kwargs)))
        return opened[-1]

    monkeypatch.setattr(av, "open", counting_open)
    return opened


def test_header_gives_frame_count_rate_size_and_duration(video: Path) -> None:
    with VideoReader(video) as reader:
        assert (reader.num_frames, reader.fps, reader.width, reader.height) == (NUM_FRAMES, 30.0, 64, 48)
        assert reader.duration == pytest.approx(NUM_FRAMES / 30)


def test_frames_come_back_in_order_and_close_to_what_was_written(all_frames: np.ndarray) -> None:
    assert all_frames.shape == (NUM_FRAMES, 48, 64, 3) and all_frames.dtype == np.uint8
    decoded = all_frames.reshape(NUM_FRAMES, -1).astype(np.float32)
    written = np.stack(textured_frames(NUM_FRAMES)).reshape(NUM_FRAMES, -1).astype(np.float32)
    distances = (decoded**2).sum(1)[:, None] + (written**2).sum(1)[None] - 2 * decoded @ written.T
    assert (distances.argmin(axis=1) == np.arange(NUM_FRAMES)).all()


def test_seeking_reads_the_same_frames_as_sequential_decoding(video: Path, all_frames: np.ndarray) -> None:
    with VideoReader(video) as reader:
        for index in range(NUM_FRAMES):
            np.testing.assert_array_equal(reader.read([index])[0], all_frames[index])


def test_unsorted_and_repeated_indices_are_returned_as_asked(video: Path, all_frames: np.ndarray) -> None:
    indices = [90, 17, 17, 55, 3, 99, 90]
    with VideoReader(video) as reader:
        np.testing.assert_array_equal(reader.read(indices), all_frames[indices])


def test_decoder_threads_give_identical_frames(video: Path, all_frames: np.ndarray) -> None:
    with VideoReader(video, threads=4) as reader:
        np.testing.assert_array_equal(reader.read([2, 40, 97]), all_frames[[2, 40, 97]])


def test_reading_the_first_frames_stops_decoding_there(
    video: Path, counting: list[CountingContainer]
) -> None:
    with VideoReader(video) as reader:
        reader.read([0, 1, 2])
    assert counting[0].decoded == 3 and counting[0].converted == 3


def test_late_frames_are_reached_by_seeking_and_only_needed_ones_converted(
    video: Path, counting: list[CountingContainer]
) -> None:
    with VideoReader(video) as reader:
        reader.read([95, 90, 95])
    # write_video puts a keyframe every 12 frames: the seek lands on frame 84.
    assert counting[0].decoded == 95 - 84 + 1
    assert counting[0].converted == 2


def test_gray_keeps_one_channel_of_a_grey_recording(tmp_path: Path) -> None:
    levels = [0, 60, 128, 200, 255]
    path = tmp_path / "ir.avi"
    write_video(path, [np.full((48, 64, 3), v, np.uint8) for v in levels], quality=2)
    with VideoReader(path) as reader:
        gray = reader.read(range(len(levels)), gray=True)
    assert gray.shape == (len(levels), 48, 64, 1)
    np.testing.assert_allclose(gray.mean(axis=(1, 2, 3)), levels, atol=2)


def test_container_without_a_frame_count_is_counted_and_indexed_by_pts(tmp_path: Path) -> None:
    path = tmp_path / "clip.mkv"  # Matroska: no frame count in the header, pts in milliseconds
    write_video(path, textured_frames(40))
    with VideoReader(path) as reader:
        assert reader.num_frames == 40
        sequential = reader.read(range(40))
        np.testing.assert_array_equal(reader.read([37, 20]), sequential[[37, 20]])


def test_a_tail_missing_from_the_file_repeats_the_last_frame(tmp_path: Path, video: Path) -> None:
    cut = tmp_path / "short_tail.avi"
    cut.write_bytes(video.read_bytes()[: packet_offsets(video)[NUM_FRAMES - 2]])
    with VideoReader(cut) as reader:
        assert reader.num_frames == NUM_FRAMES  # the header still claims them
        frames = reader.read([96, 97, 98, 99])
    np.testing.assert_array_equal(frames[2], frames[1])
    np.testing.assert_array_equal(frames[3], frames[1])


def test_a_file_truncated_by_more_than_a_few_frames_is_an_error(tmp_path: Path, video: Path) -> None:
    cut = tmp_path / "truncated.avi"
    cut.write_bytes(video.read_bytes()[: packet_offsets(video)[40]])
    with VideoReader(cut) as reader:
        assert reader.read([0, 39]).shape[0] == 2
        with pytest.raises(DataError, match=r"truncated.avi: only 40 of the 100 frames"):
            reader.read([39, 40 + MAX_MISSING_TAIL + 1])


def test_indices_outside_the_video_are_a_programming_error(video: Path) -> None:
    with VideoReader(video) as reader, pytest.raises(ValueError, match=r"\[0, 100\)"):
        reader.read([5, NUM_FRAMES])


def write_audio_only(path: Path) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda path: None, "file not found"),
        (lambda path: path.write_bytes(b""), "file is empty"),
        (lambda path: path.write_bytes(np.random.default_rng(1).bytes(4000)), "not a readable video"),
        (lambda path: path.mkdir(), "not a file"),
        (write_audio_only, "has no video stream"),
    ],
    ids=["missing", "empty", "random-bytes", "directory", "audio-only"],
)
def test_unusable_files_raise_a_data_error_naming_the_file(tmp_path: Path, make, problem: str) -> None:
    path = tmp_path / "bad.avi"
    make(path)
    with pytest.raises(DataError) as caught:
        VideoReader(path)
    assert caught.value.path == str(path)
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"{path}: ")
