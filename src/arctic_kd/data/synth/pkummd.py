"""Render a synthetic PKU-MMD phase-1 dataset: long recordings of several actions, with label and split files.

A recording is one performer doing every class once, in a random order, with idle gaps (the room empty)
before, between and after the actions; the sensors record it together as views M (0°), L (+45°) and R
(−45°), named like PKU-MMD's `0002-L`. Each action is a synthetic NTU take (`render_take`), so the frames
of a label row are exactly that take's frames. The `SynthConfig` knobs keep their meaning: `performers`
are the subjects, `replications` the recordings per subject, `num_classes` the actions per recording,
`cameras` the views, `min_frames`/`max_frames` the action lengths.

Files, in PKU-MMD's layout (the default `data.pkummd` patterns): `Data/RGB_VIDEO/0002-L.avi`, IR as
`Data/IR_VIDEO/0002-L-infrared.avi` or as a folder of PNGs `Data/IR_VIDEO/0002-L/00000.png …`,
`Train_Label_PKU_final/0002-L.txt` (rows `label,start,end,confidence`, frames from 1, end inclusive,
start first: the download's one reversed row is a typo that the reader drops), `Split/cross-subject.txt`
(the last third of the subjects test; its lists end with a comma, as real files may) and
`Split/cross-view.txt` (view M tests), and `class_names.txt`.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from arctic_kd.config import PkuMmdConfig
from arctic_kd.data.ntu import SampleName
from arctic_kd.data.synth import render
from arctic_kd.data.synth.dataset import SynthConfig, _backgrounds, render_take
from arctic_kd.data.synth.folder import CLASS_FILE, META_FILE, claim_folder, read_marker
from arctic_kd.data.video import VideoWriter
from arctic_kd.data.workers import map_in_workers
from arctic_kd.progress import progress_bar

VIEW_OF_CAMERA = {1: "M", 2: "L", 3: "R"}
FIRST_RECORDING = 2  # PKU-MMD's recordings are numbered from 0002
PNG_IR_PATTERN = "Data/IR_VIDEO/{video}"  # data.pkummd.ir for IR written as PNG folders
_ORDER, _LABELS, _NOISE = 101, 102, 103  # seed namespaces (apart from dataset.py's)
IrFormat = Literal["avi", "png"]


@dataclass(frozen=True)
class Recording:
    """One long recording: who performs, which take seeds it uses, and its timeline."""

    number: int
    performer: int
    replication: int
    actions: tuple[int, ...]  # in the order performed
    gaps: tuple[int, ...]  # idle frames before each action, then after the last

    def take(self, action: int, setup: int) -> SampleName:
        """The NTU take whose frames are this recording's instance of `action` (camera 0: all cameras)."""
        return SampleName(setup, 0, self.performer, self.replication, action)

    def video(self, camera: int) -> str:
        return f"{self.number:04d}-{VIEW_OF_CAMERA[camera]}"


def recordings(config: SynthConfig) -> list[Recording]:
    """Every recording of the dataset, subject by subject."""
    out = []
    for performer in range(1, config.performers + 1):
        for replication in range(1, config.replications + 1):
            number = FIRST_RECORDING + (performer - 1) * config.replications + replication - 1
            rng = np.random.default_rng([config.seed, _ORDER, number])
            actions = tuple(int(a) + 1 for a in rng.permutation(config.num_classes))
            low, high = max(2, config.min_frames // 4), max(3, config.min_frames // 2)
            gaps = tuple(int(g) for g in rng.integers(low, high + 1, config.num_classes + 1))
            out.append(Recording(number, performer, replication, actions, gaps))
    return out


def tested_subjects(config: SynthConfig) -> range:
    """The cross-subject test subjects: the last third (at least one), as PKU-MMD tests on its last ids."""
    return range(config.performers - max(1, config.performers // 3) + 1, config.performers + 1)


def write_recording(config: SynthConfig, root: Path, recording: Recording, ir_format: IrFormat) -> int:
    """Render and write every view of one recording and its label files; returns the number of views."""
    cv2.setNumThreads(1)
    layout = PkuMmdConfig()
    setup = config.setup_of(recording.performer)
    cameras = range(1, config.cameras + 1)
    sinks = {c: _ViewSink(config, root, layout, recording.video(c), ir_format) for c in cameras}
    rooms = {c: _EmptyRoom(config, setup, c, recording.number) for c in cameras}
    rows = []
    position = 0
    for gap, action in zip(recording.gaps, (*recording.actions, None), strict=True):
        for camera in cameras:
            for _ in range(gap):
                sinks[camera].write(*rooms[camera].frame())
        position += gap
        if action is None:
            break
        views = render_take(config, recording.take(action, setup))
        for out in views:
            for rgb, ir in zip(out.rgb, out.ir, strict=True):
                sinks[out.name.camera].write(rgb, ir)
        length = len(views[0].rgb)
        rows.append((action, position + 1, position + length))  # frames from 1, end inclusive
        position += length
    for sink in sinks.values():
        sink.close()
    labels = _label_text(rows, np.random.default_rng([config.seed, _LABELS, recording.number]))
    for camera in cameras:
        _write_text(root / layout.labels.format(video=recording.video(camera)), labels)
    return len(sinks)


def _label_text(rows: list[tuple[int, int, int]], rng: np.random.Generator) -> str:
    lines = []
    for action, start, end in rows:
        lines.append(f"{action},{start},{end},{int(rng.integers(1, 3))}\n")
    return "".join(lines)


class _EmptyRoom:
    """The idle frames of one view: the room without the performer, with fresh sensor noise."""

    def __init__(self, config: SynthConfig, setup: int, camera: int, number: int) -> None:
        self.rgb, self.ir = _backgrounds(config, setup, camera)
        rng = np.random.default_rng([config.seed, _NOISE, number, camera])
        self.rgb_noise = render.SensorNoise(self.rgb.shape, config.rgb_noise, rng)
        self.ir_noise = render.SensorNoise(self.ir.shape, config.ir_noise, rng)

    def frame(self) -> tuple[np.ndarray, np.ndarray]:
        return self.rgb_noise(self.rgb), self.ir_noise(self.ir)


class _ViewSink:
    """The RGB and IR files of one view, written frame by frame beside their targets and renamed at the end,
    so that an interrupted run never leaves a half-written file under a final name."""

    def __init__(
        self, config: SynthConfig, root: Path, layout: PkuMmdConfig, video: str, ir_format: IrFormat
    ) -> None:
        self.rgb_path = root / layout.rgb.format(video=video)
        ir_pattern = layout.ir if ir_format == "avi" else PNG_IR_PATTERN
        self.ir_path = root / ir_pattern.format(video=video)
        self._rgb_partial, self._ir_partial = _partial(self.rgb_path), _partial(self.ir_path)
        self._rgb = VideoWriter(self._rgb_partial, config.fps, config.quality)
        self._ir = VideoWriter(self._ir_partial, config.fps, config.quality) if ir_format == "avi" else None
        if self._ir is None:
            shutil.rmtree(self._ir_partial, ignore_errors=True)
            self._ir_partial.mkdir(parents=True)
        self._frames = 0

    def write(self, rgb: np.ndarray, ir: np.ndarray) -> None:
        self._rgb.write(rgb)
        if self._ir is not None:
            self._ir.write(ir)
        elif not cv2.imwrite(str(self._ir_partial / f"{self._frames:05d}.png"), ir):
            raise OSError(f"cannot write a PNG frame into {self._ir_partial}")
        self._frames += 1

    def close(self) -> None:
        self._rgb.close()
        os.replace(self._rgb_partial, self.rgb_path)
        if self._ir is not None:
            self._ir.close()
        elif self.ir_path.is_dir():
            shutil.rmtree(self.ir_path)
        os.replace(self._ir_partial, self.ir_path)


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial(path)
    partial.write_text(text)
    os.replace(partial, path)


def _split_text(train: list[str], test: list[str], trailing: str) -> str:
    """PKU-MMD's four lines, with its misspelt second header."""
    return (
        f"Training videos:\n{', '.join(train)}{trailing}\nValidataion videos:\n{', '.join(test)}{trailing}\n"
    )


def write_splits(config: SynthConfig, root: Path) -> None:
    layout = PkuMmdConfig()
    views = [(r, c) for r in recordings(config) for c in range(1, config.cameras + 1)]
    tested = set(tested_subjects(config))
    for split, is_test, trailing in (
        ("cross-subject", lambda r, c: r.performer in tested, ","),
        ("cross-view", lambda r, c: VIEW_OF_CAMERA[c] == "M", ""),
    ):
        train = [r.video(c) for r, c in views if not is_test(r, c)]
        test = [r.video(c) for r, c in views if is_test(r, c)]
        _write_text(root / layout.splits.format(split=split), _split_text(train, test, trailing))


def instance_count(config: SynthConfig) -> int:
    """Labelled action instances over all views."""
    return config.performers * config.replications * config.num_classes * config.cameras


def _meta(config: SynthConfig, ir_format: IrFormat) -> dict:
    return {
        "generator": "arctic-kd synthetic PKU-MMD",
        "config": json.loads(json.dumps(asdict(config))),
        "ir": ir_format,
        "instances": instance_count(config),
    }


def is_rendered(root: str | Path, config: SynthConfig, ir_format: IrFormat = "avi") -> bool:
    """True when `root` already holds a complete PKU-MMD-layout dataset made with exactly these options."""
    return read_marker(Path(root)) == _meta(config, ir_format)


def generate(
    root: str | Path,
    config: SynthConfig,
    ir_format: IrFormat = "avi",
    workers: int | None = None,
    progress: bool = True,
) -> Path:
    """Write the dataset under `root`; returns `root`."""
    if config.performers < 2:
        raise ValueError("the PKU-MMD layout needs at least 2 performers (training and test subjects)")
    if config.cameras < 2:  # else cross-view.txt lists no training recording, and no split file reads
        raise ValueError("the PKU-MMD layout needs at least 2 cameras (cross-view tests view M)")
    root = Path(root)
    claim_folder(root, _meta(config, ir_format))
    (root / CLASS_FILE).write_text("".join(f"A{i + 1:03d}\t{n}\n" for i, n in enumerate(config.class_names)))
    write_splits(config, root)
    todo = recordings(config)
    workers = workers or min(os.cpu_count() or 1, len(todo))
    bar = progress_bar(total=len(todo) * config.cameras, unit="video", desc="synth", enabled=progress)
    with bar:
        write = functools.partial(write_recording, config, root, ir_format=ir_format)
        for done in map_in_workers(write, todo, workers):
            bar.update(done)
    (root / META_FILE).write_text(json.dumps(_meta(config, ir_format), indent=2) + "\n")
    return root
