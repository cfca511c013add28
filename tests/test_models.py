"""Video ResNets: torchvision-identical layout at depth 18, shapes, feature outputs, CAM identity, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from arctic_kd.models import (
    STAGE_NAMES,
    VideoResNet,
    mc3_18,
    r2plus1d_18,
    r3d_18,
    video_resnet,
)

ARCHS = ("r3d", "mc3", "r2plus1d")
FACTORIES = {"r3d": r3d_18, "mc3": mc3_18, "r2plus1d": r2plus1d_18}
Shapes = dict[str, tuple[int, ...]]


# --- torchvision's layout, written out from its architecture -----------------------------------------


def conv_shapes(name: str, out_ch: int, in_ch: int, kernel: tuple[int, int, int]) -> Shapes:
    return {f"{name}.weight": (out_ch, in_ch, *kernel)}


def bn_shapes(name: str, channels: int) -> Shapes:
    stats = ("weight", "bias", "running_mean", "running_var")
    return {f"{name}.{stat}": (channels,) for stat in stats} | {f"{name}.num_batches_tracked": ()}


def block_conv_shapes(name: str, kind: str, in_ch: int, out_ch: int, midplanes: int) -> Shapes:
    """torchvision's Conv3DSimple ("3d"), Conv3DNoTemporal ("2d") or Conv2Plus1D ("2+1d")."""
    if kind == "2+1d":
        return (
            conv_shapes(f"{name}.0", midplanes, in_ch, (1, 3, 3))
            | bn_shapes(f"{name}.1", midplanes)
            | conv_shapes(f"{name}.3", out_ch, midplanes, (3, 1, 1))
        )
    return conv_shapes(name, out_ch, in_ch, (3, 3, 3) if kind == "3d" else (1, 3, 3))


def torchvision_state_shapes(arch: str, num_classes: int = 400) -> Shapes:
    """Every state-dict key and shape of torchvision's `<arch>_18`."""
    kinds = {"r3d": ["3d"] * 4, "mc3": ["3d"] + ["2d"] * 3, "r2plus1d": ["2+1d"] * 4}[arch]
    if arch == "r2plus1d":
        shapes = (
            conv_shapes("stem.0", 45, 3, (1, 7, 7))
            | bn_shapes("stem.1", 45)
            | conv_shapes("stem.3", 64, 45, (3, 1, 1))
            | bn_shapes("stem.4", 64)
        )
    else:
        shapes = conv_shapes("stem.0", 64, 3, (3, 7, 7)) | bn_shapes("stem.1", 64)
    inplanes = 64
    for stage, (kind, planes) in enumerate(zip(kinds, (64, 128, 256, 512), strict=True), start=1):
        for index in range(2):
            block = f"layer{stage}.{index}"
            midplanes = (inplanes * planes * 27) // (inplanes * 9 + 3 * planes)  # once per block
            shapes |= block_conv_shapes(f"{block}.conv1.0", kind, inplanes, planes, midplanes)
            shapes |= bn_shapes(f"{block}.conv1.1", planes)
            shapes |= block_conv_shapes(f"{block}.conv2.0", kind, planes, planes, midplanes)
            shapes |= bn_shapes(f"{block}.conv2.1", planes)
            if inplanes != planes:
                shapes |= conv_shapes(f"{block}.downsample.0", planes, inplanes, (1, 1, 1))
                shapes |= bn_shapes(f"{block}.downsample.1", planes)
            inplanes = planes
    return shapes | {"fc.weight": (num_classes, 512), "fc.bias": (num_classes,)}


def torchvision_parameterless_modules(arch: str) -> set[str]:
    """torchvision's ReLU and pooling module names: nothing more (e.g. no dropout module)."""
    names = {"avgpool", "stem.2"} | ({"stem.5"} if arch == "r2plus1d" else set())
    for stage in range(1, 5):
        for index in range(2):
            block = f"layer{stage}.{index}"
            names |= {f"{block}.relu", f"{block}.conv1.2"}
            if arch == "r2plus1d":
                names |= {f"{block}.conv1.0.2", f"{block}.conv2.0.2"}
    return names


@pytest.fixture(scope="module")
def kinetics_models() -> dict[str, VideoResNet]:
    """The three depth-18 width-1 models with Kinetics-400 heads, built once for the layout tests."""
    return {arch: factory(num_classes=400) for arch, factory in FACTORIES.items()}


@pytest.mark.parametrize("arch", ARCHS)
def test_state_dict_matches_torchvision(kinetics_models: dict[str, VideoResNet], arch: str) -> None:
    state = kinetics_models[arch].state_dict()
    assert {key: tuple(value.shape) for key, value in state.items()} == torchvision_state_shapes(arch)


@pytest.mark.parametrize("arch", ARCHS)
def test_module_names_match_torchvision(kinetics_models: dict[str, VideoResNet], arch: str) -> None:
    leaves = {name for name, module in kinetics_models[arch].named_modules() if not list(module.children())}
    with_params = {key.rsplit(".", 1)[0] for key in torchvision_state_shapes(arch)}
    assert leaves == with_params | torchvision_parameterless_modules(arch)


def test_r2plus1d_midplanes_are_computed_once_per_block(kinetics_models: dict[str, VideoResNet]) -> None:
    state = kinetics_models["r2plus1d"].state_dict()
    assert state["layer1.0.conv1.0.0.weight"].shape == (144, 64, 1, 3, 3)
    assert state["layer2.0.conv1.0.0.weight"].shape == (230, 64, 1, 3, 3)
    assert state["layer2.0.conv2.0.0.weight"].shape == (230, 128, 1, 3, 3)  # not the 128→128 value 288
    assert state["layer2.1.conv1.0.0.weight"].shape == (288, 128, 1, 3, 3)


@pytest.mark.parametrize(
    ("arch", "count"), [("r3d", 33_371_472), ("mc3", 11_695_440), ("r2plus1d", 31_505_325)]
)
def test_parameter_counts_match_torchvision(
    kinetics_models: dict[str, VideoResNet], arch: str, count: int
) -> None:
    assert sum(p.numel() for p in kinetics_models[arch].parameters()) == count


# (kernel, stride, padding) of the convolutions whose geometry tells the three architectures apart.
CONV_GEOMETRY = {
    "r3d": {
        "stem.0": ((3, 7, 7), (1, 2, 2), (1, 3, 3)),
        "layer2.0.conv1.0": ((3, 3, 3), (2, 2, 2), (1, 1, 1)),
        "layer2.0.conv2.0": ((3, 3, 3), (1, 1, 1), (1, 1, 1)),
        "layer2.0.downsample.0": ((1, 1, 1), (2, 2, 2), (0, 0, 0)),
    },
    "mc3": {
        "stem.0": ((3, 7, 7), (1, 2, 2), (1, 3, 3)),
        "layer1.0.conv1.0": ((3, 3, 3), (1, 1, 1), (1, 1, 1)),
        "layer2.0.conv1.0": ((1, 3, 3), (1, 2, 2), (0, 1, 1)),
        "layer4.1.conv2.0": ((1, 3, 3), (1, 1, 1), (0, 1, 1)),
        "layer2.0.downsample.0": ((1, 1, 1), (1, 2, 2), (0, 0, 0)),
    },
    "r2plus1d": {
        "stem.0": ((1, 7, 7), (1, 2, 2), (0, 3, 3)),
        "stem.3": ((3, 1, 1), (1, 1, 1), (1, 0, 0)),
        "layer2.0.conv1.0.0": ((1, 3, 3), (1, 2, 2), (0, 1, 1)),
        "layer2.0.conv1.0.3": ((3, 1, 1), (2, 1, 1), (1, 0, 0)),
        "layer2.0.conv2.0.3": ((3, 1, 1), (1, 1, 1), (1, 0, 0)),
        "layer2.0.downsample.0": ((1, 1, 1), (2, 2, 2), (0, 0, 0)),
    },
}


@pytest.mark.parametrize("arch", ARCHS)
def test_convolution_geometry_matches_torchvision(kinetics_models: dict[str, VideoResNet], arch: str) -> None:
    model = kinetics_models[arch]
    for name, geometry in CONV_GEOMETRY[arch].items():
        conv = model.get_submodule(name)
        assert (conv.kernel_size, conv.stride, conv.padding) == geometry, name


def test_initialisation_follows_torchvision(kinetics_models: dict[str, VideoResNet]) -> None:
    model = kinetics_models["r3d"]
    conv = model.layer4[0].conv1[0].weight
    fan_out = 512 * 27
    assert conv.std().item() == pytest.approx((2 / fan_out) ** 0.5, rel=0.02)
    assert model.fc.weight.std().item() == pytest.approx(0.01, rel=0.02)
    assert torch.count_nonzero(model.fc.bias) == 0
    bn = model.layer4[0].conv1[1]
    assert torch.all(bn.weight == 1) and torch.count_nonzero(bn.bias) == 0


# --- behaviour on small inputs --------------------------------------------------------------------------


def clips(in_channels: int, frames: int = 4) -> torch.Tensor:
    return torch.randn(2, in_channels, frames, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("depth", [10, 18])
@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("width", [0.25, 1.0])
def test_forward_gives_logits(arch: str, depth: int, in_channels: int, width: float) -> None:
    model = video_resnet(arch, depth, num_classes=7, in_channels=in_channels, width=width)
    assert model(clips(in_channels)).shape == (2, 7)
    assert model.stem[0].in_channels == in_channels


@pytest.mark.parametrize("arch", ARCHS)
def test_depth_34_layout(arch: str) -> None:
    model = video_resnet(arch, 34, num_classes=7, width=0.25)
    assert [len(model.get_submodule(name)) for name in STAGE_NAMES[1:]] == [3, 4, 6, 3]
    assert model.stage_channels == {"stem": 16, "layer1": 16, "layer2": 32, "layer3": 64, "layer4": 128}


def test_width_rounds_channels_with_a_floor_of_eight() -> None:
    model = video_resnet("r2plus1d", 10, num_classes=3, width=0.1)
    assert model.stage_channels == {"stem": 8, "layer1": 8, "layer2": 13, "layer3": 26, "layer4": 51}
    assert model.stem[0].out_channels == 8  # the (2+1)D stem's 45 middle channels, scaled and floored


# Feature (T, H, W) for an 8-frame 32x32 clip: MC3 never strides time, R3D and R(2+1)D halve it per stage.
FEATURE_SIZES = {
    "r3d": [(8, 16, 16), (8, 16, 16), (4, 8, 8), (2, 4, 4), (1, 2, 2)],
    "mc3": [(8, 16, 16), (8, 16, 16), (8, 8, 8), (8, 4, 4), (8, 2, 2)],
    "r2plus1d": [(8, 16, 16), (8, 16, 16), (4, 8, 8), (2, 4, 4), (1, 2, 2)],
}


@pytest.mark.parametrize("arch", ARCHS)
def test_stage_features_in_order_with_declared_channels(arch: str) -> None:
    model = video_resnet(arch, 10, num_classes=5, in_channels=1, width=0.25).eval()
    logits, features = model.forward_features(clips(1, frames=8))
    assert list(features) == list(STAGE_NAMES)
    expected = {
        name: (2, model.stage_channels[name], *size)
        for name, size in zip(STAGE_NAMES, FEATURE_SIZES[arch], strict=True)
    }
    assert {name: tuple(f.shape) for name, f in features.items()} == expected
    torch.testing.assert_close(logits, model(clips(1, frames=8)))


def test_per_block_features_follow_network_order_and_are_not_overwritten() -> None:
    model = video_resnet("r3d", 18, num_classes=5, width=0.25).eval()
    _, features = model.forward_features(clips(3), per_block=True)
    assert list(features) == [
        "stem",
        *(name for stage in STAGE_NAMES[1:] for name in (f"{stage}.0", f"{stage}.1", stage)),
    ]
    assert features["layer3"] is features["layer3.1"]
    with torch.no_grad():  # in-place ReLUs must not have altered maps already handed out
        torch.testing.assert_close(features["layer1.0"], model.layer1[0](features["stem"]))
        torch.testing.assert_close(features["layer2.0"], model.layer2[0](features["layer1.1"]))


@pytest.mark.parametrize("arch", ARCHS)
def test_class_activation_map_averages_to_logits(arch: str) -> None:
    model = video_resnet(arch, 10, num_classes=6, width=0.25, dropout=0.5).eval()
    logits, features = model.forward_features(clips(3, frames=8))
    layer4 = features["layer4"]
    cam = model.class_activation_map(layer4)
    assert cam.shape == (2, 6, *layer4.shape[2:])
    torch.testing.assert_close(cam.mean(dim=(2, 3, 4)), logits)
    torch.testing.assert_close(cam[:, :, 0, 1, 0], model.fc(layer4[:, :, 0, 1, 0]))


def test_dropout_acts_only_in_training_and_adds_no_state() -> None:
    model = video_resnet("mc3", 10, num_classes=4, width=0.25, dropout=0.5)
    plain = video_resnet("mc3", 10, num_classes=4, width=0.25)
    assert model.state_dict().keys() == plain.state_dict().keys()
    x = clips(3)
    assert not torch.allclose(model(x), model(x))
    model.eval()
    torch.testing.assert_close(model(x), model(x))


def test_gradients_reach_the_stem() -> None:
    model = video_resnet("r2plus1d", 10, num_classes=3, in_channels=1, width=0.25)
    model(clips(1)).sum().backward()
    assert model.stem[0].weight.grad is not None and model.stem[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"arch": "r50"}, "choose one of mc3, r2plus1d, r3d"),
        ({"depth": 50}, "choose one of 10, 18, 34"),
        ({"num_classes": 0}, "num_classes"),
        ({"in_channels": 0}, "in_channels"),
        ({"width": 0.0}, "width"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
    ],
)
def test_invalid_arguments_raise_value_error(overrides: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"arch": "r3d", "depth": 10, "num_classes": 3, "width": 0.25}
    with pytest.raises(ValueError, match=message):
        video_resnet(**(arguments | overrides))


def test_factories_accept_options() -> None:
    model = r2plus1d_18(num_classes=9, in_channels=1, width=0.25)
    assert isinstance(model.fc, nn.Linear) and model.fc.out_features == 9
    assert model.stem[0].in_channels == 1
    assert [len(model.get_submodule(name)) for name in STAGE_NAMES[1:]] == [2, 2, 2, 2]
