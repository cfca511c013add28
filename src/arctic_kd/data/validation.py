"""The validation split (`data.val`): a part of the protocol's TRAINING samples set aside to choose `best.pt`
and to score `arctic tune`, so that nothing is ever selected on the test split.

Cross-subject protocols (NTU xsub, PKU-MMD cross-subject, manifest-xsub) hold out whole subjects, as their
test split does: `data.val.subjects`, else a share `data.val.fraction` of the training subjects (at least
one). PKU-MMD names no subjects, so its whole takes are held out (every view of a recording F<number>).
Every other protocol holds out `data.val.fraction` of each class's training samples (at least one of a
class with two or more). The draw depends only on the sample list and `data.val`, never on the run's seed
or process: every seed of a bench and every torchrun process validates on the same samples.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

from arctic_kd.config import DataConfig
from arctic_kd.data.protocols import get_protocol
from arctic_kd.data.samples import PairedSample
from arctic_kd.errors import ConfigError, DataError, shortlist

CROSS_SUBJECT = ("pkummd-xsub", "manifest-xsub")  # besides the NTU protocols split by performer
_DRAW_SEED = 23  # fixed: the split must not move with the run's seed


def cross_subject(config: DataConfig) -> bool:
    """Whether the protocol tests on subjects that never train (so validation holds out subjects too)."""
    if config.dataset == "ntu":
        return get_protocol(config.protocol).train_field == "performer"
    return config.protocol in CROSS_SUBJECT


def carve_validation(
    train: Sequence[PairedSample], config: DataConfig
) -> tuple[list[PairedSample], list[PairedSample]]:
    """(training, validation) samples out of the protocol's training samples, disjoint, deterministic."""
    if cross_subject(config):
        held = _held_subjects(train, config)
        parts = [s for s in train if s.subject not in held], [s for s in train if s.subject in held]
    elif config.val.subjects:
        raise ConfigError(
            f"data.val.subjects: {config.protocol} is not a cross-subject protocol; its validation split is "
            "data.val.fraction of each class's training samples"
        )
    else:
        parts = _stratified(train, config.val.fraction)
    if not parts[0] or not parts[1]:
        raise DataError(
            "data.val",
            f"the validation split of {config.protocol} leaves {len(parts[0])} training and {len(parts[1])} "
            "validation samples; change data.val.fraction or data.val.subjects, or data.val.enabled=false",
        )
    return parts


def _held_subjects(train: Sequence[PairedSample], config: DataConfig) -> set[str]:
    subjects = sorted({s.subject for s in train})
    if config.val.subjects:
        unknown = sorted(set(config.val.subjects) - set(subjects))
        if unknown:
            raise DataError(
                "data.val.subjects",
                f"{shortlist(unknown, 5)} not among the training subjects of {config.protocol} "
                f"({shortlist(subjects, 10)})",
            )
        return set(config.val.subjects)
    count = max(1, round(config.val.fraction * len(subjects)))
    return set(random.Random(_DRAW_SEED).sample(subjects, count))


def _stratified(train: Sequence[PairedSample], share: float) -> tuple[list[PairedSample], list[PairedSample]]:
    by_class: dict[int, list[PairedSample]] = defaultdict(list)
    for sample in sorted(train, key=lambda s: s.sample_id):
        by_class[sample.label].append(sample)
    held: set[str] = set()
    for label in sorted(by_class):
        members = by_class[label]
        count = min(max(1, round(share * len(members))), len(members) - 1)
        held |= {s.sample_id for s in random.Random(f"{_DRAW_SEED}:{label}").sample(members, count)}
    return [s for s in train if s.sample_id not in held], [s for s in train if s.sample_id in held]
