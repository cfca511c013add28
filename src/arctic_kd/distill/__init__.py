"""Distillation methods on one small base; `build_distiller` picks one by name (`distill.method`)."""

from __future__ import annotations

from torch import nn

from arctic_kd.config.distill import DistillConfig
from arctic_kd.distill.afd import AFD
from arctic_kd.distill.arctic import ARCTIC
from arctic_kd.distill.at import AT
from arctic_kd.distill.base import Distiller, MatchingDistiller, Vanilla
from arctic_kd.distill.dkd import DKD
from arctic_kd.distill.fitnets import FitNets
from arctic_kd.distill.kd import KD
from arctic_kd.distill.rkd import RKD
from arctic_kd.distill.sp import SP
from arctic_kd.errors import ConfigError

METHODS: dict[str, type[Distiller]] = {
    "arctic": ARCTIC,
    "kd": KD,
    "fitnets": FitNets,
    "at": AT,
    "sp": SP,
    "rkd": RKD,
    "afd": AFD,
    "dkd": DKD,
}


def build_distiller(
    config: DistillConfig, student: nn.Module, teacher: nn.Module, label_smoothing: float = 0.0
):
    if config.method not in METHODS:
        raise ConfigError(
            f"distill.method: unknown method {config.method!r}; known: {', '.join(sorted(METHODS))}"
        )
    return METHODS[config.method](student, teacher, config, label_smoothing=label_smoothing)


__all__ = [
    "AFD",
    "ARCTIC",
    "AT",
    "DKD",
    "KD",
    "METHODS",
    "RKD",
    "SP",
    "Distiller",
    "FitNets",
    "MatchingDistiller",
    "Vanilla",
    "build_distiller",
]
