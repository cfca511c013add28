"""The model factory: an architecture described as plain values (`model_spec`, stored in every checkpoint)
and the network built from such a description (`build_model`)."""

from __future__ import annotations

from typing import Any

from torch import nn

from arctic_kd.models.resnet3d import video_resnet


def model_spec(
    arch: str, depth: int, width: float, dropout: float, in_channels: int, num_classes: int
) -> dict:
    """The architecture as plain values: what a checkpoint stores so it can be rebuilt without a config."""
    return {
        "arch": arch,
        "depth": depth,
        "width": width,
        "dropout": dropout,
        "in_channels": in_channels,
        "num_classes": num_classes,
    }


def build_model(spec: dict[str, Any]) -> nn.Module:
    """A fresh network of the architecture `spec` describes (`model_spec`), untrained."""
    return video_resnet(
        spec["arch"],
        spec["depth"],
        num_classes=spec["num_classes"],
        in_channels=spec["in_channels"],
        width=spec["width"],
        dropout=spec["dropout"],
    )
