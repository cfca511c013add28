"""Distillation methods on one small base; `build_distiller` picks one by name."""

from __future__ import annotations

from torch import nn

from arctic_kd.config import ConfigError, DistillConfig
from arctic_kd.distill.arctic import ARCTIC
from arctic_kd.distill.base import Distiller, Vanilla

METHODS: dict[str, type[Distiller]] = {"arctic": ARCTIC}


def build_distiller(
    config: DistillConfig, student: nn.Module, teacher: nn.Module, label_smoothing: float = 0.0
):
    if config.method not in METHODS:
        raise ConfigError(
            f"distill.method: unknown method {config.method!r}; known: {', '.join(sorted(METHODS))}"
        )
    return METHODS[config.method](student, teacher, config, label_smoothing=label_smoothing)


__all__ = ["ARCTIC", "METHODS", "Distiller", "Vanilla", "build_distiller"]
