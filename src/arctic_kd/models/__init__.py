"""Video backbones: R3D, MC3 and R(2+1)D ResNets with torchvision-compatible weights and feature outputs."""

from arctic_kd.models.resnet3d import (
    ARCHS,
    BLOCKS_PER_STAGE,
    STAGE_NAMES,
    VideoResNet,
    mc3_18,
    r2plus1d_18,
    r2plus1d_midplanes,
    r3d_18,
    video_resnet,
)

__all__ = [
    "ARCHS",
    "BLOCKS_PER_STAGE",
    "STAGE_NAMES",
    "VideoResNet",
    "mc3_18",
    "r2plus1d_18",
    "r2plus1d_midplanes",
    "r3d_18",
    "video_resnet",
]
