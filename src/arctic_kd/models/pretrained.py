"""Start a backbone from pretrained weights: Kinetics-400 state dicts saved from torchvision's `r3d_18`,
`mc3_18` or `r2plus1d_18` (`torch.save(model.state_dict(), PATH)`), whose keys our networks share at
width 1 and depth 18.

The classifier is never taken from the file (it was trained for other classes): `fc` keeps its fresh
initialisation for the dataset's classes. A 1-channel (IR) network gets the RGB stem filters summed over
their three input channels, which answers a grey frame the way the RGB network answers the same frame in
grey. Everything that does not fit is reported, key by key, instead of being silently dropped.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from arctic_kd.errors import ArcticError, DataError, shortlist

HEAD_PREFIX = "fc."
STEM_CONV = "stem.0.weight"  # the only convolution that sees the input channels
_WRAPPER_KEYS = ("state_dict", "model")  # where training scripts put the weights inside a checkpoint
_SHOWN = 8  # keys listed per problem in a report; the rest are counted


@dataclass
class PretrainedReport:
    """What a load did with every tensor of the file and of the model."""

    source: str
    loaded: list[str] = field(default_factory=list)
    summed_stem: list[str] = field(default_factory=list)  # loaded after summing over input channels
    missing: list[str] = field(default_factory=list)  # model tensors the file lacks: left as initialised
    unexpected: list[str] = field(default_factory=list)  # file tensors the model has no place for
    mismatched: list[str] = field(default_factory=list)  # "key: file shape vs model shape"
    head_classes: int = 0  # classes of the re-initialised head

    def summary(self) -> str:
        considered = len(self.loaded) + len(self.missing) + len(self.mismatched)
        lines = [f"pretrained weights {self.source}: {len(self.loaded)} of {considered} tensors loaded"]
        lines += [
            f"  {key}: summed over the file's input channels (1-channel input)" for key in self.summed_stem
        ]
        lines.append(f"  fc: re-initialised for {self.head_classes} classes")
        for title, keys in (
            ("missing from the file (left as initialised)", self.missing),
            ("unexpected in the file (ignored)", self.unexpected),
            ("shape mismatch (ignored)", self.mismatched),
        ):
            if keys:
                lines.append(f"  {title}: {len(keys)}: {shortlist(keys, _SHOWN)}")
        return "\n".join(lines)


def load_torch_file(path: Path, missing_name: str, file_kind: str) -> Any:
    """What `torch.save` wrote at `path`, loaded on the CPU with `weights_only=True`; a missing file
    ("{missing_name} not found") or one torch cannot read ("not a readable {file_kind}") is a `DataError`,
    so a user's wrong path is one clear line whether it names a checkpoint or pretrained weights."""
    if not path.is_file():
        raise DataError(path, f"{missing_name} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise DataError(path, _load_problem(error, file_kind)) from None


def _load_problem(error: Exception, file_kind: str) -> str:
    """One line for what `torch.load` raised: its weights-only refusals come as a page of advice."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    refusal = lines and lines[0].startswith("Weights only load failed")
    if isinstance(error, pickle.UnpicklingError) and refusal:
        if "GLOBAL" in str(error):  # a class or function to import: what a malicious pickle needs
            return f"refused: this {file_kind} holds Python objects beyond tensors, which could run code"
        lines = [line for line in lines if line.startswith("Unsupported")] or lines
    return f"not a readable {file_kind} ({type(error).__name__}: {lines[0] if lines else ''})"


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """A state dict from `path`: a bare one, or a checkpoint holding it under "state_dict" or "model"
    (a "module." prefix from DataParallel/DDP is removed). Loaded with `weights_only=True`."""
    path = Path(path)
    data = load_torch_file(path, "pretrained weights", "weights file")
    if isinstance(data, Mapping):
        data = next((data[k] for k in _WRAPPER_KEYS if _is_state_dict(data.get(k))), data)
    if not _is_state_dict(data):
        raise DataError(path, "holds no state dict (a mapping of parameter names to tensors)")
    if all(key.startswith("module.") for key in data):
        data = {key.removeprefix("module."): value for key, value in data.items()}
    return dict(data)


def _is_state_dict(value: object) -> bool:
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in value.items())
    )


def load_pretrained(model: nn.Module, path: str | Path) -> PretrainedReport:
    """Load the weights file at `path` into `model` (see `load_weights`)."""
    return load_weights(model, read_state_dict(path), str(path))


def load_weights(
    model: nn.Module, state: Mapping[str, Tensor], source: str = "state dict"
) -> PretrainedReport:
    """Copy every tensor of `state` that fits into `model`, except the head; report the rest.

    Raises `ArcticError` when nothing fits (another architecture, depth or width).
    """
    target = model.state_dict()
    report = PretrainedReport(source, head_classes=int(target[f"{HEAD_PREFIX}weight"].shape[0]))
    merged = dict(target)
    for key, tensor in state.items():
        if key.startswith(HEAD_PREFIX):
            continue
        if key not in target:
            report.unexpected.append(key)
            continue
        wanted = target[key]
        if key == STEM_CONV and _sums_to(tensor, wanted):
            tensor = tensor.sum(1, keepdim=True)
            report.summed_stem.append(key)
        if tensor.shape != wanted.shape:
            report.mismatched.append(f"{key}: {tuple(tensor.shape)} vs {tuple(wanted.shape)}")
            continue
        merged[key] = tensor.to(wanted.dtype)
        report.loaded.append(key)
    if all(key.endswith("num_batches_tracked") for key in report.loaded):  # scalars fit any network
        problems = report.mismatched[:3] + report.unexpected[:3]
        raise ArcticError(
            f"{source}: no tensor fits this network (torchvision Kinetics weights fit arch r3d, mc3 or "
            f"r2plus1d at depth 18 and width 1); e.g. {'; '.join(problems) or 'only a head'}"
        )
    done = set(report.loaded) | {m.partition(":")[0] for m in report.mismatched}
    report.missing = [k for k in target if not k.startswith(HEAD_PREFIX) and k not in done]
    model.load_state_dict(merged)
    return report


def _sums_to(tensor: Tensor, wanted: Tensor) -> bool:
    """Whether summing a stem's filters over input channels gives the 1-channel shape `wanted`."""
    return (
        tensor.ndim == wanted.ndim == 5
        and wanted.shape[1] == 1
        and tensor.shape[1] > 1
        and tensor.shape[:1] + tensor.shape[2:] == wanted.shape[:1] + wanted.shape[2:]
    )
