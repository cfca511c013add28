"""The four official NTU RGB+D evaluation protocols and the official missing-skeleton lists.

Each protocol is a rule on the name fields, so it applies to the real dataset, a subset of it, or
synthetic data in the same naming, and reproduces the published split sizes exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources

from arctic_kd.data.ntu import SampleName

_NTU60_TRAIN_PERFORMERS = frozenset(
    {1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38}
)
_NTU120_TRAIN_PERFORMERS = _NTU60_TRAIN_PERFORMERS | frozenset(
    {45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89}
    | {91, 92, 93, 94, 95, 97, 98, 100, 103}
)
_NTU60_SETUPS = 17
_NTU60_ACTIONS = 60
_MISSING_FILES = {"ntu60": "ntu60_missing_skeletons.txt", "ntu120": "ntu120_missing_skeletons.txt"}
_NAME_LINE = re.compile(r"S\d{3}C\d{3}P\d{3}R\d{3}A\d{3}")


@dataclass(frozen=True)
class Protocol:
    """A train/test rule: a sample trains when its `train_field` value is in `train_values`."""

    name: str
    dataset: str  # "ntu60" | "ntu120"
    description: str
    train_field: str  # a SampleName field: "performer", "camera" or "setup"
    train_values: frozenset[int]

    def includes(self, name: SampleName) -> bool:
        """NTU60 protocols cover setups 1–17 and actions 1–60 only; NTU120 ones cover every sample."""
        if self.dataset == "ntu60":
            return name.setup <= _NTU60_SETUPS and name.action <= _NTU60_ACTIONS
        return True

    def is_train(self, name: SampleName) -> bool:
        """The rule alone; `split` also applies `includes`."""
        return getattr(name, self.train_field) in self.train_values


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            "ntu60-xsub",
            "ntu60",
            "NTU60 cross-subject: 20 training performers, the other 20 test",
            "performer",
            _NTU60_TRAIN_PERFORMERS,
        ),
        Protocol(
            "ntu60-xview",
            "ntu60",
            "NTU60 cross-view: cameras 2 and 3 train, camera 1 tests",
            "camera",
            frozenset({2, 3}),
        ),
        Protocol(
            "ntu120-xsub",
            "ntu120",
            "NTU120 cross-subject: 53 training performers, the other 53 test",
            "performer",
            _NTU120_TRAIN_PERFORMERS,
        ),
        Protocol(
            "ntu120-xset",
            "ntu120",
            "NTU120 cross-setup: even setup ids train, odd ones test",
            "setup",
            frozenset(range(2, 33, 2)),
        ),
    )
}


def get_protocol(name: str) -> Protocol:
    """Look a protocol up by name; the error lists the known names so a typo is easy to fix."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}") from None


@cache
def missing_skeleton_names(dataset: str) -> frozenset[str]:
    """The official names of samples with missing or incomplete skeletons (302 for NTU60, 535 for NTU120)."""
    if dataset not in _MISSING_FILES:
        raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(_MISSING_FILES)}")
    resource = resources.files("arctic_kd.data") / "resources" / _MISSING_FILES[dataset]
    lines = (line.strip() for line in resource.read_text(encoding="utf-8").splitlines())
    return frozenset(line for line in lines if _NAME_LINE.fullmatch(line))


def split(
    names: Iterable[SampleName], protocol: str | Protocol, drop_missing_skeletons: bool = False
) -> tuple[list[SampleName], list[SampleName]]:
    """(train, test) in input order, keeping the samples the protocol covers.

    `drop_missing_skeletons` gives the skeleton-based convention; video work usually keeps all samples.
    """
    if isinstance(protocol, str):
        protocol = get_protocol(protocol)
    dropped = missing_skeleton_names(protocol.dataset) if drop_missing_skeletons else frozenset()
    train: list[SampleName] = []
    test: list[SampleName] = []
    for name in names:
        if protocol.includes(name) and str(name) not in dropped:
            (train if protocol.is_train(name) else test).append(name)
    return train, test
