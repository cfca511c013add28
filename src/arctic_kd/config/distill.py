"""The `distill` section of a config: which method distils (`method`) and each method's own settings
(ARCTIC: arm, arc, kd; the baselines: one section each), checked when the config is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from arctic_kd.config.typed import at_least, fraction, positive, rule
from arctic_kd.errors import ConfigValueError

# kept here, below the package that defines them, so a config is checked before anything is built
# (tests check they match `distill.METHODS`)
DISTILL_METHODS = ("arctic", "kd", "fitnets", "at", "sp", "rkd", "afd", "dkd")


Stage = Literal["stem", "layer1", "layer2", "layer3", "layer4"]


ALL_STAGES: tuple[Stage, ...] = ("layer1", "layer2", "layer3", "layer4")


def _stages(key: str, stages: tuple[str, ...]) -> None:
    """At least one stage, none twice. Which names exist is the `Stage` type's rule, checked for every
    file and --set value; code may pass its own backbone's stage names."""
    ok = bool(stages) and len(set(stages)) == len(stages)
    rule(ok, key, "distinct stage names (at least one)", list(stages))


def _weighted_stages(section: str, config: Any) -> None:
    """The checks of a section that weighs a loss over matched stages (ARM, AT, SP, AFD): weight ≥ 0,
    distinct stages and, where it learns an embedding, dim ≥ 1."""
    at_least(section, config, 0, "weight")
    if hasattr(config, "dim"):
        at_least(section, config, 1, "dim")
    _stages(f"{section}.stages", config.stages)


@dataclass
class ArmConfig:
    """Attention-based relation matching between every teacher and every student stage."""

    weight: float = 2.0  # chosen on a second render (BENCHMARKS.md, ARCTIC's weights)
    value: Literal["relation", "attention"] = "attention"  # measured best, BENCHMARKS.md
    dim: int = 64
    stages: tuple[Stage, ...] = ("layer1", "layer2", "layer3", "layer4")

    def __post_init__(self) -> None:
        _weighted_stages("distill.arm", self)


@dataclass
class ArcConfig:
    """Activation region constraint on class activation maps."""

    weight: float = 1.0
    rho: float = 0.3
    maps: Literal["cam", "gradcam"] = "cam"
    gradcam_stages: tuple[Stage, ...] = ("layer3", "layer4")
    # CAM only: L_ARC moves the student's features, not its classifier (Grad-CAM detaches its weights)
    fixed_classifier: bool = False

    def __post_init__(self) -> None:
        at_least("distill.arc", self, 0, "weight")
        fraction("distill.arc", self, "rho", low_open=True)
        _stages("distill.arc.gradcam_stages", self.gradcam_stages)


@dataclass
class KdConfig:
    """Correctness-aware knowledge distillation."""

    weight: float = 0.25  # at 1 it works against ARM (BENCHMARKS.md, ARCTIC's weights)
    tau: float = 4.0
    mode: Literal["mask", "ahead", "shift", "none"] = "mask"

    def __post_init__(self) -> None:
        at_least("distill.kd", self, 0, "weight")
        positive("distill.kd", self, "tau")


@dataclass
class HintonConfig:
    """Baseline `kd`: Hinton KD, soft targets at temperature τ (mdistiller's CIFAR recipe)."""

    weight: float = 0.9
    ce_weight: float = 0.1
    tau: float = 4.0

    def __post_init__(self) -> None:
        at_least("distill.hinton", self, 0, "weight", "ce_weight")
        positive("distill.hinton", self, "tau")


@dataclass
class FitNetsConfig:
    """Baseline `fitnets`: one hint stage, regressed from the student's same stage."""

    weight: float = 100.0
    stage: Stage = "layer2"

    def __post_init__(self) -> None:
        at_least("distill.fitnets", self, 0, "weight")


@dataclass
class AtConfig:
    """Baseline `at`: attention transfer (p = 2 maps)."""

    weight: float = 1000.0
    stages: tuple[Stage, ...] = ALL_STAGES

    def __post_init__(self) -> None:
        _weighted_stages("distill.at", self)


@dataclass
class SpConfig:
    """Baseline `sp`: similarity-preserving KD."""

    weight: float = 3000.0
    stages: tuple[Stage, ...] = ("layer4",)

    def __post_init__(self) -> None:
        _weighted_stages("distill.sp", self)


@dataclass
class RkdConfig:
    """Baseline `rkd`: relational KD on the pooled embedding of one stage."""

    distance_weight: float = 25.0
    angle_weight: float = 50.0
    stage: Stage = "layer4"

    def __post_init__(self) -> None:
        at_least("distill.rkd", self, 0, "distance_weight", "angle_weight")


@dataclass
class AfdConfig:
    """Baseline `afd`: attention-based feature distillation over teacher × student stages."""

    weight: float = 200.0
    dim: int = 128
    stages: tuple[Stage, ...] = ALL_STAGES

    def __post_init__(self) -> None:
        _weighted_stages("distill.afd", self)


@dataclass
class DkdConfig:
    """Baseline `dkd`: decoupled KD, its weight ramped up linearly over the first `warmup_epochs`."""

    alpha: float = 1.0
    beta: float = 8.0
    tau: float = 4.0
    warmup_epochs: float = 20.0

    def __post_init__(self) -> None:
        at_least("distill.dkd", self, 0, "alpha", "beta", "warmup_epochs")
        positive("distill.dkd", self, "tau")


@dataclass
class DistillConfig:
    """`method` picks the distiller; each has its own section (ARCTIC: arm, arc, kd)."""

    method: str = "arctic"
    teacher: str = ""  # checkpoint of the RGB teacher
    arm: ArmConfig = field(default_factory=ArmConfig)
    arc: ArcConfig = field(default_factory=ArcConfig)
    kd: KdConfig = field(default_factory=KdConfig)  # ARCTIC's correctness-aware KD, not the `kd` baseline
    hinton: HintonConfig = field(default_factory=HintonConfig)  # the `kd` baseline
    fitnets: FitNetsConfig = field(default_factory=FitNetsConfig)
    at: AtConfig = field(default_factory=AtConfig)
    sp: SpConfig = field(default_factory=SpConfig)
    rkd: RkdConfig = field(default_factory=RkdConfig)
    afd: AfdConfig = field(default_factory=AfdConfig)
    dkd: DkdConfig = field(default_factory=DkdConfig)

    def __post_init__(self) -> None:  # the message `distill.build_distiller` gives too
        if self.method not in DISTILL_METHODS:
            known = ", ".join(sorted(DISTILL_METHODS))
            raise ConfigValueError(f"distill.method: unknown method {self.method!r}; known: {known}")


def method_sections(method: str) -> tuple[str, ...]:
    """The `distill` sections that `method` reads; the others cannot change its training."""
    return {"arctic": ("arm", "arc", "kd"), "kd": ("hinton",)}.get(method, (method,))
