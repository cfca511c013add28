"""Samples listed twice, and test samples that training also sees: both silently inflate accuracy.

A manifest can list a row twice, and a PKU-MMD split file can name a recording on both sides; nothing
else would notice. `arctic check` lists what `find_duplicates` finds (and fails), training prints it.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence

from arctic_kd.data.samples import MODALITIES, PairedSample


def find_duplicates(train: Sequence[PairedSample], test: Sequence[PairedSample]) -> list[str]:
    """One line per problem: a sample id listed more than once, a clip (files and span) listed twice on one
    side of the split, and a test sample reading a video file that training reads too."""
    problems = _repeated("sample id", [("train", s) for s in train] + [("test", s) for s in test], _sample_id)
    for side, samples in (("train", train), ("test", test)):
        problems += _repeated("clip", [(side, s) for s in samples], _clip)
    trained = {path for sample in train for path in _files(sample)}
    for sample in test:
        shared = [path for path in _files(sample) if path in trained]
        if shared:
            problems.append(
                f"test sample {sample.sample_id} reads {' and '.join(shared)}, which training reads too"
            )
    return problems


def _repeated(what: str, listed: list[tuple[str, PairedSample]], key) -> list[str]:
    places = defaultdict(list)
    for side, sample in listed:
        places[key(sample)].append(side)
    return [
        f"{what} {value} is listed {len(sides)} times ({', '.join(sorted(sides))})"
        for value, sides in places.items()
        if len(sides) > 1
    ]


def _sample_id(sample: PairedSample) -> str:
    return sample.sample_id


def _clip(sample: PairedSample) -> str:
    end = "end" if sample.end is None else sample.end
    return f"{' + '.join(_files(sample))} [{sample.start}, {end})"


def _files(sample: PairedSample) -> list[str]:
    paths = (sample.rgb, sample.ir)
    return [os.path.normpath(p) for m, p in zip(MODALITIES, paths, strict=True) if p is not None]
