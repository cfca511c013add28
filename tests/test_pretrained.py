"""Pretrained backbones: torchvision-format Kinetics state dicts load into R3D, MC3, R(2+1)D, RGB and IR."""

from __future__ import annotations

import pytest
import torch

from arctic_kd.cli import main
from arctic_kd.errors import ArcticError, DataError
from arctic_kd.models import video_resnet
from arctic_kd.models.pretrained import load_pretrained, load_weights, read_state_dict
from tests.test_engine import TINY_RUN

KINETICS_CLASSES = 400


def torchvision_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    """Every key of torchvision's `{arch}_18` state dict with its shape, written out from torchvision's
    `torchvision/models/video/resnet.py` (BasicStem / R2Plus1dStem, BasicBlock, Conv3DSimple,
    Conv3DNoTemporal, Conv2Plus1D), independently of our own model code."""
    shapes: dict[str, tuple[int, ...]] = {}

    def batch_norm(prefix: str, channels: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{name}"] = (channels,)
        shapes[f"{prefix}.num_batches_tracked"] = ()

    def conv(prefix: str, stage: int, cin: int, cout: int, mid: int) -> None:
        """conv_builder(cin, cout, mid) at `prefix` (a Conv3d, or Conv2Plus1D's Sequential)."""
        if arch == "r2plus1d":
            shapes[f"{prefix}.0.weight"] = (mid, cin, 1, 3, 3)
            batch_norm(f"{prefix}.1", mid)
            shapes[f"{prefix}.3.weight"] = (cout, mid, 3, 1, 1)
        elif arch == "mc3" and stage > 1:
            shapes[f"{prefix}.weight"] = (cout, cin, 1, 3, 3)
        else:
            shapes[f"{prefix}.weight"] = (cout, cin, 3, 3, 3)

    if arch == "r2plus1d":
        shapes["stem.0.weight"] = (45, 3, 1, 7, 7)
        batch_norm("stem.1", 45)
        shapes["stem.3.weight"] = (64, 45, 3, 1, 1)
        batch_norm("stem.4", 64)
    else:
        shapes["stem.0.weight"] = (64, 3, 3, 7, 7)
        batch_norm("stem.1", 64)
    inplanes = 64
    for stage, planes in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            prefix = f"layer{stage}.{block}"
            cin = inplanes if block == 0 else planes
            mid = (cin * planes * 3 * 3 * 3) // (cin * 3 * 3 + 3 * planes)  # BasicBlock's midplanes
            conv(f"{prefix}.conv1.0", stage, cin, planes, mid)
            batch_norm(f"{prefix}.conv1.1", planes)
            conv(f"{prefix}.conv2.0", stage, planes, planes, mid)
            batch_norm(f"{prefix}.conv2.1", planes)
            if block == 0 and stage > 1:
                shapes[f"{prefix}.downsample.0.weight"] = (planes, cin, 1, 1, 1)
                batch_norm(f"{prefix}.downsample.1", planes)
        inplanes = planes
    shapes["fc.weight"] = (KINETICS_CLASSES, 512)
    shapes["fc.bias"] = (KINETICS_CLASSES,)
    return shapes


def random_state(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        key: torch.tensor(7)
        if key.endswith("num_batches_tracked")
        else torch.randn(shape, generator=generator)
        for key, shape in shapes.items()
    }


@pytest.fixture(scope="module", params=["r3d", "mc3", "r2plus1d"])
def kinetics_file(request, tmp_path_factory):
    """A file as `torch.save(torchvision.models.video.{arch}_18(...).state_dict(), path)` writes it."""
    arch = request.param
    path = tmp_path_factory.mktemp("kinetics") / f"{arch}_18.pth"
    state = random_state(torchvision_shapes(arch))
    torch.save(state, path)
    return arch, path, state


def test_torchvision_state_dict_loads_into_the_rgb_backbone_with_every_key(kinetics_file):
    arch, path, state = kinetics_file
    model = video_resnet(arch, 18, num_classes=12, in_channels=3)
    report = load_pretrained(model, path)
    assert report.missing == [] and report.unexpected == [] and report.mismatched == []
    assert report.summed_stem == []
    loaded = model.state_dict()
    assert len(report.loaded) == len(state) - 2  # all but fc.weight and fc.bias
    for key in report.loaded:
        assert torch.equal(loaded[key], state[key]), key
    # the head is new, for the dataset's 12 classes, at its fresh initialisation (zero bias)
    assert loaded["fc.weight"].shape == (12, 512) and torch.equal(loaded["fc.bias"], torch.zeros(12))


def test_the_ir_backbone_gets_the_rgb_stem_summed_over_colour_channels(kinetics_file):
    arch, path, state = kinetics_file
    model = video_resnet(arch, 18, num_classes=5, in_channels=1)
    report = load_pretrained(model, path)
    assert report.missing == [] and report.unexpected == [] and report.mismatched == []
    assert report.summed_stem == ["stem.0.weight"]
    stem = model.state_dict()["stem.0.weight"]
    assert stem.shape[1] == 1
    torch.testing.assert_close(stem, state["stem.0.weight"].sum(1, keepdim=True))
    assert torch.equal(
        model.state_dict()["layer4.1.conv2.1.running_var"], state["layer4.1.conv2.1.running_var"]
    )
    assert model.fc.out_features == 5
    assert "summed over" in report.summary() and "re-initialised for 5 classes" in report.summary()


def tiny(in_channels: int = 3, width: float = 0.125) -> torch.nn.Module:
    return video_resnet("r3d", 10, num_classes=3, in_channels=in_channels, width=width)


@pytest.mark.parametrize("wrapper", ["state_dict", "model"])
def test_checkpoints_holding_the_weights_under_a_key_load_too(tmp_path, wrapper):
    source = tiny()
    wrapped = {f"module.{k}": v for k, v in source.state_dict().items()}  # as saved from DDP
    torch.save({"epoch": 3, wrapper: wrapped, "note": "anything"}, tmp_path / "ckpt.pt")
    state = read_state_dict(tmp_path / "ckpt.pt")
    assert set(state) == set(source.state_dict())
    target = tiny()
    report = load_weights(target, state)
    assert not report.missing and not report.unexpected
    assert torch.equal(target.layer1[0].conv1[0].weight, source.layer1[0].conv1[0].weight)


def test_missing_and_unexpected_keys_and_shape_mismatches_are_reported():
    state = {k: v for k, v in tiny().state_dict().items() if not k.startswith("layer4.")}
    state["extra.weight"] = torch.zeros(2)
    state["layer1.0.conv1.0.weight"] = torch.zeros(1, 1, 1, 1, 1)
    report = load_weights(tiny(), state, "file.pt")
    assert "extra.weight" in report.unexpected
    assert any(k.startswith("layer4.") for k in report.missing)
    assert report.mismatched == ["layer1.0.conv1.0.weight: (1, 1, 1, 1, 1) vs (8, 8, 3, 3, 3)"]
    summary = report.summary()
    assert "missing from the file" in summary and "unexpected" in summary and "shape mismatch" in summary


def test_weights_that_fit_nowhere_are_an_error(tmp_path):
    with pytest.raises(ArcticError, match="no tensor fits"):
        load_weights(tiny(width=0.25), tiny(width=0.125).state_dict())
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(DataError, match="no state dict"):
        read_state_dict(tmp_path / "list.pt")
    with pytest.raises(DataError, match="not found"):
        read_state_dict(tmp_path / "absent.pt")


def test_train_starts_the_ir_network_from_pretrained_weights(tiny_dataset, tmp_path, capsys):
    weights = tmp_path / "rgb.pt"
    torch.save(tiny().state_dict(), weights)  # 3-channel weights of the student's shape
    args = ["train", "--modality", "ir", "--set", f"data.root={tiny_dataset}", *TINY_RUN]
    args += ["--set", "optim.epochs=1", "--set", "student.arch=r3d", "--set", "student.depth=10"]
    assert main([*args, "--out", str(tmp_path / "run"), "--pretrained", str(weights)]) == 0
    out = capsys.readouterr().out
    assert f"pretrained weights {weights}" in out and "stem.0.weight: summed over" in out
    assert main([*args, "--out", str(tmp_path / "run2"), "--pretrained", str(tmp_path / "absent.pt")]) == 2
    assert "arctic train: error: " in capsys.readouterr().err
