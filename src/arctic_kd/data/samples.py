"""The records every dataset reader and every consumer of samples share: which streams a sample has
(`MODALITIES`), one paired sample (`PairedSample`), and an unusable one with the run's tally of them
(`BadSample`, `BadSampleReport`). Kept apart from the dataset so readers (NTU, PKU-MMD, manifests), the
store, the checks and the loaders import records, not the clip-making machinery.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from arctic_kd.data.person import PixelBox, Registration
from arctic_kd.errors import DataError

MODALITIES = ("rgb", "ir")


@dataclass(frozen=True)
class PairedSample:
    """What any dataset reader (NTU, PKU-MMD, a CSV manifest) hands to the dataset.

    `start`/`end` trim a clip out of a long video; they count frames of the RGB stream (of the IR stream when
    no RGB file is listed) and carry over to the other stream by relative time.
    """

    sample_id: str
    label: int
    rgb: Path | None
    ir: Path | None
    start: int = 0
    end: int | None = None
    person: Mapping[str, PixelBox] | None = None  # per modality, the performer's box in that stream's pixels
    registration: Registration | None = None  # RGB pixel → IR pixel affine (person.py); None: Kinect FOVs
    registration_source: str = ""  # fitted, setup+camera, camera, nominal (registration.py); "": unrecorded
    subject: str = ""  # who performs it (NTU P001, PKU-MMD the take F002, a manifest's `subject`): data.val

    def path(self, modality: str) -> Path:
        path = self.rgb if modality == "rgb" else self.ir
        if path is None:
            raise DataError(self.sample_id, f"sample has no {modality.upper()} video")
        return path


@dataclass(frozen=True)
class BadSample:
    """A sample whose data is unusable: returned instead of raised, so the policy runs in the main process."""

    sample_id: str
    path: str
    problem: str

    def error(self) -> DataError:
        return DataError(self.path, self.problem)


@dataclass
class BadSampleReport:
    """The samples a run skipped, each listed once however many epochs met it; and, filled in by
    `loaders.make_loaders`, those its protocol left out (a modality missing) and those read as whole frames
    because their skeleton gives no person box (sample id -> why), so a run can say what it did not use."""

    samples: dict[str, BadSample] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)
    whole_frames: dict[str, str] = field(default_factory=dict)

    def add(self, bad: BadSample) -> None:
        self.samples.setdefault(bad.sample_id, bad)

    def __len__(self) -> int:
        return len(self.samples)

    def summary(self) -> str:
        """Text for the end of a run: how many were skipped, and why each one."""
        if not self.samples:
            return "no bad samples"
        lines = [f"skipped {len(self.samples)} bad sample(s):"]
        lines += [f"  {bad.sample_id}: {bad.path}: {bad.problem}" for bad in self.samples.values()]
        return "\n".join(lines)
