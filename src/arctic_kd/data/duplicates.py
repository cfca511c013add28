"""Samples listed twice, and test samples that training also sees: both silently inflate accuracy.

A manifest can list a row twice, and a PKU-MMD split file can name a recording on both sides; nothing
else would notice. `arctic check` lists what `find_duplicates` finds (and fails), training prints it.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence

from arctic_kd.data.dataset import MODALITIES, PairedSample


def find_duplicates(train: Sequence[PairedSample], test: Sequence[PairedSample]) -> list[str]:
    """One line per problem: a sample id or a clip (file and span) listed more than once, and a sample id
    or a video file on both sides of the split."""
    problems: list[str] = []
    listed = [("train", s) for s in train] + [("test", s) for s in test]
    for what, key in (("sample id", _sample_id), ("clip", _clip)):
        places = defaultdict(list)
        for side, sample in listed:
            places[key(sample)].append(side)
        for value, sides in places.items():
            if len(sides) > 1:
                problems.append(f"{what} {value} is listed {len(sides)} times ({', '.join(sorted(sides))})")
    problems += _shared_files(train, test)
    return problems


def _sample_id(sample: PairedSample) -> str:
    return sample.sample_id


def _clip(sample: PairedSample) -> str:
    end = "end" if sample.end is None else sample.end
    return f"{' + '.join(_files(sample))} [{sample.start}, {end})"


def _files(sample: PairedSample) -> list[str]:
    paths = (sample.rgb, sample.ir)
    return [os.path.normpath(p) for m, p in zip(MODALITIES, paths, strict=True) if p is not None]


def _shared_files(train: Sequence[PairedSample], test: Sequence[PairedSample]) -> list[str]:
    """Video files read by training and by testing (any span of them)."""
    trained = {path for sample in train for path in _files(sample)}
    shared = sorted({path for sample in test for path in _files(sample) if path in trained})
    return [f"video {path} is in both the training and the test split" for path in shared]
