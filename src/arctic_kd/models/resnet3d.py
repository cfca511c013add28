"""R3D, MC3 and R(2+1)D video ResNets (Tran et al., CVPR 2018, "A Closer Look at Spatiotemporal
Convolutions").

Module and state-dict names follow torchvision's `r3d_18` / `mc3_18` / `r2plus1d_18` exactly, so Kinetics
checkpoints saved from torchvision load without renaming; torchvision itself is not needed. On top of
torchvision's layout the networks return the per-stage (and per-block) feature maps that distillers match,
and class-activation maps of the last stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, Required, TypedDict, Unpack

import torch.nn.functional as F
from torch import Tensor, nn

STAGE_NAMES = ("stem", "layer1", "layer2", "layer3", "layer4")
ARCHS = ("mc3", "r2plus1d", "r3d")
BLOCKS_PER_STAGE = {10: (1, 1, 1, 1), 18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}

_BASE_PLANES = (64, 128, 256, 512)
_R2PLUS1D_STEM_MIDPLANES = 45
_MIN_CHANNELS = 8


class ConvBuilder(Protocol):
    """A block's 3x3x3-equivalent convolution; the three architectures differ only in this choice."""

    def __call__(self, in_planes: int, out_planes: int, midplanes: int, stride: int = 1) -> nn.Module: ...

    @staticmethod
    def downsample_stride(stride: int) -> tuple[int, int, int]: ...


class Conv3DSimple(nn.Conv3d):
    """Full 3x3x3 convolution (R3D, and MC3's first stage)."""

    def __init__(self, in_planes: int, out_planes: int, midplanes: int, stride: int = 1) -> None:
        del midplanes  # only the factorised convolution has a middle width
        super().__init__(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)

    @staticmethod
    def downsample_stride(stride: int) -> tuple[int, int, int]:
        return (stride, stride, stride)


class Conv3DNoTemporal(nn.Conv3d):
    """Spatial-only 1x3x3 convolution (MC3's later stages): time is neither mixed nor strided."""

    def __init__(self, in_planes: int, out_planes: int, midplanes: int, stride: int = 1) -> None:
        del midplanes
        super().__init__(
            in_planes,
            out_planes,
            kernel_size=(1, 3, 3),
            stride=(1, stride, stride),
            padding=(0, 1, 1),
            bias=False,
        )

    @staticmethod
    def downsample_stride(stride: int) -> tuple[int, int, int]:
        return (1, stride, stride)


class Conv2Plus1D(nn.Sequential):
    """A 3x3x3 convolution factorised into spatial 1x3x3, BN, ReLU, temporal 3x1x1 (R(2+1)D)."""

    def __init__(self, in_planes: int, out_planes: int, midplanes: int, stride: int = 1) -> None:
        super().__init__(
            Conv3DNoTemporal(in_planes, midplanes, midplanes, stride),  # the same 1x3x3 weights, same keys
            nn.BatchNorm3d(midplanes),
            nn.ReLU(inplace=True),
            nn.Conv3d(
                midplanes,
                out_planes,
                kernel_size=(3, 1, 1),
                stride=(stride, 1, 1),
                padding=(1, 0, 0),
                bias=False,
            ),
        )

    @staticmethod
    def downsample_stride(stride: int) -> tuple[int, int, int]:
        return (stride, stride, stride)


def r2plus1d_midplanes(inplanes: int, planes: int) -> int:
    """Middle width that gives a (2+1)D convolution about the parameters of a full 3x3x3 one.

    torchvision computes it once per block from (inplanes, planes) and reuses it for the block's second
    convolution too; checkpoint shapes depend on that, so we do the same.
    """
    return (inplanes * planes * 3 * 3 * 3) // (inplanes * 3 * 3 + 3 * planes)


class BasicBlock(nn.Module):
    """Two convolutions with BN and a residual connection (ResNet-18/34 style)."""

    def __init__(
        self,
        inplanes: int,
        planes: int,
        conv_builder: ConvBuilder,
        stride: int = 1,
        downsample: nn.Module | None = None,
    ) -> None:
        super().__init__()
        midplanes = r2plus1d_midplanes(inplanes, planes)
        self.conv1 = nn.Sequential(
            conv_builder(inplanes, planes, midplanes, stride), nn.BatchNorm3d(planes), nn.ReLU(inplace=True)
        )
        self.conv2 = nn.Sequential(conv_builder(planes, planes, midplanes), nn.BatchNorm3d(planes))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.conv2(self.conv1(x))
        out += residual
        return self.relu(out)


def basic_stem(in_channels: int, out_channels: int) -> nn.Sequential:
    """R3D/MC3 stem: one 3x7x7 convolution, spatial stride 2, no temporal stride."""
    return nn.Sequential(
        nn.Conv3d(
            in_channels, out_channels, kernel_size=(3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False
        ),
        nn.BatchNorm3d(out_channels),
        nn.ReLU(inplace=True),
    )


def r2plus1d_stem(in_channels: int, out_channels: int, midplanes: int) -> nn.Sequential:
    """R(2+1)D stem: the 3x7x7 convolution factorised into 1x7x7 and 3x1x1."""
    return nn.Sequential(
        nn.Conv3d(
            in_channels, midplanes, kernel_size=(1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False
        ),
        nn.BatchNorm3d(midplanes),
        nn.ReLU(inplace=True),
        nn.Conv3d(midplanes, out_channels, kernel_size=(3, 1, 1), stride=1, padding=(1, 0, 0), bias=False),
        nn.BatchNorm3d(out_channels),
        nn.ReLU(inplace=True),
    )


class VideoResNet(nn.Module):
    """A stem, four residual stages and a linear classifier over globally pooled features.

    `forward` gives logits; `forward_features` also gives the feature maps distillers need, and
    `class_activation_map` turns the last stage's map into per-position class scores.
    """

    def __init__(
        self,
        stem: nn.Sequential,
        conv_builders: Sequence[ConvBuilder],
        blocks_per_stage: Sequence[int],
        stage_planes: Sequence[int],
        num_classes: int,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.stem = stem
        inplanes = stage_planes[0]
        self.stage_channels: dict[str, int] = {"stem": inplanes}
        for index, (conv_builder, blocks, planes) in enumerate(
            zip(conv_builders, blocks_per_stage, stage_planes, strict=True)
        ):
            name = STAGE_NAMES[index + 1]
            stride = 1 if index == 0 else 2
            self.add_module(name, _make_stage(conv_builder, inplanes, planes, blocks, stride))
            self.stage_channels[name] = inplanes = planes
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.dropout_rate = dropout
        self.fc = nn.Linear(inplanes, num_classes)
        _init_like_torchvision(self)

    def forward(self, x: Tensor) -> Tensor:
        """Logits (N, num_classes) for clips (N, C, T, H, W)."""
        return self.forward_features(x)[0]

    def forward_features(self, x: Tensor, per_block: bool = False) -> tuple[Tensor, dict[str, Tensor]]:
        """Logits and the (N, C, T, H, W) output of every stage, in network order.

        With `per_block` every residual block's output is added as "layerN.M", before its stage's entry.
        """
        x = self.stem(x)
        features = {"stem": x}
        for name in STAGE_NAMES[1:]:
            for index, block in enumerate(self.get_submodule(name)):
                x = block(x)
                if per_block:
                    features[f"{name}.{index}"] = x
            features[name] = x
        return self._classify(x), features

    def class_activation_map(self, features_layer4: Tensor, fixed_classifier: bool = False) -> Tensor:
        """The classifier applied at every position: (N, num_classes, T, H, W); its mean is the logits.

        `fixed_classifier` lets a loss on the maps move only the features, not the classifier's weights.
        """
        weight, bias = self.fc.weight[:, :, None, None, None], self.fc.bias
        if fixed_classifier:
            weight, bias = weight.detach(), None if bias is None else bias.detach()
        return F.conv3d(features_layer4, weight, bias)

    def _classify(self, features_layer4: Tensor) -> Tensor:
        pooled = self.avgpool(features_layer4).flatten(1)
        return self.fc(F.dropout(pooled, self.dropout_rate, self.training))


def _make_stage(
    conv_builder: ConvBuilder, inplanes: int, planes: int, blocks: int, stride: int
) -> nn.Sequential:
    """A stage's blocks; only the first changes resolution or width, through a 1x1x1 projection."""
    downsample = None
    if stride != 1 or inplanes != planes:
        downsample = nn.Sequential(
            nn.Conv3d(
                inplanes, planes, kernel_size=1, stride=conv_builder.downsample_stride(stride), bias=False
            ),
            nn.BatchNorm3d(planes),
        )
    first = BasicBlock(inplanes, planes, conv_builder, stride, downsample)
    return nn.Sequential(first, *(BasicBlock(planes, planes, conv_builder) for _ in range(blocks - 1)))


def _init_like_torchvision(model: nn.Module) -> None:
    """torchvision's initialisation, so that from-scratch training matches published recipes."""
    for module in model.modules():
        if isinstance(module, nn.Conv3d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm3d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0, 0.01)
            nn.init.zeros_(module.bias)


def _scaled(channels: int, width: float) -> int:
    return max(_MIN_CHANNELS, round(channels * width))


def video_resnet(
    arch: str,
    depth: int,
    *,
    num_classes: int,
    in_channels: int = 3,
    width: float = 1.0,
    dropout: float = 0.0,
) -> VideoResNet:
    """Build an R3D ("r3d"), MC3 ("mc3") or R(2+1)D ("r2plus1d") ResNet of depth 10, 18 or 34.

    `width` scales every channel count (rounded, at least 8); at width 1 and depth 18 the layout is
    torchvision's. `dropout` is applied to the pooled features before `fc` during training.
    """
    _check_options(arch, depth, num_classes, in_channels, width, dropout)
    planes = tuple(_scaled(base, width) for base in _BASE_PLANES)
    if arch == "r2plus1d":
        stem = r2plus1d_stem(in_channels, planes[0], _scaled(_R2PLUS1D_STEM_MIDPLANES, width))
        conv_builders: tuple[ConvBuilder, ...] = (Conv2Plus1D,) * 4
    else:
        stem = basic_stem(in_channels, planes[0])
        later = Conv3DNoTemporal if arch == "mc3" else Conv3DSimple
        conv_builders = (Conv3DSimple, later, later, later)
    return VideoResNet(stem, conv_builders, BLOCKS_PER_STAGE[depth], planes, num_classes, dropout)


def _check_options(
    arch: str, depth: int, num_classes: int, in_channels: int, width: float, dropout: float
) -> None:
    """Reject bad arguments at construction, with the allowed values, rather than as a shape error later."""
    if arch not in ARCHS:
        raise ValueError(f"unknown video ResNet arch {arch!r}; choose one of {', '.join(ARCHS)}")
    if depth not in BLOCKS_PER_STAGE:
        options = ", ".join(map(str, BLOCKS_PER_STAGE))
        raise ValueError(f"unsupported video ResNet depth {depth!r}; choose one of {options}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    if in_channels < 1:
        raise ValueError(f"in_channels must be at least 1 (1 for IR, 3 for RGB), got {in_channels}")
    if not width > 0:
        raise ValueError(f"width must be positive, got {width}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")


class VideoResNetOptions(TypedDict, total=False):
    """Keyword options shared by the named factories."""

    num_classes: Required[int]
    in_channels: int
    width: float
    dropout: float


def r3d_18(**options: Unpack[VideoResNetOptions]) -> VideoResNet:
    """R3D-18: full 3-D convolutions throughout (torchvision's `r3d_18` layout)."""
    return video_resnet("r3d", 18, **options)


def mc3_18(**options: Unpack[VideoResNetOptions]) -> VideoResNet:
    """MC3-18: 3-D convolutions in layer1, spatial-only ones after (torchvision's `mc3_18` layout)."""
    return video_resnet("mc3", 18, **options)


def r2plus1d_18(**options: Unpack[VideoResNetOptions]) -> VideoResNet:
    """R(2+1)D-18: every 3-D convolution factorised into space then time (torchvision's layout)."""
    return video_resnet("r2plus1d", 18, **options)
