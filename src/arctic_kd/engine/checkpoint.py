"""Checkpoints: written atomically, read with `weights_only=True`, self-describing.

A checkpoint holds everything needed to use the model without the run's config file: the architecture,
the class names and the config it was trained with, so `arctic eval` or `predict` need only the file.
`last.pt` also holds what a killed run needs to continue exactly (optimizer, scheduler, scaler, loader
position, every random generator), as plain tensors, numbers and lists so `weights_only=True` still loads it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from arctic_kd.errors import ArcticError, DataError, os_error
from arctic_kd.models.factory import build_model
from arctic_kd.models.pretrained import load_torch_file

FORMAT = "arctic-kd/1"


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write beside the target and rename, so a crash mid-write never leaves a truncated checkpoint."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"format": FORMAT, **payload}, partial)
        os.replace(partial, path)
    except (OSError, RuntimeError) as error:  # torch reports a full disk as "unexpected pos ..."
        with contextlib.suppress(OSError):
            partial.unlink()
        raise _write_error(error, path) from None
    return path


def _write_error(error: OSError | RuntimeError, path: Path) -> ArcticError:
    """A failed checkpoint write as one line naming the file and the cause; the previous file is intact."""
    if isinstance(error, OSError) and error.errno != errno.ENOSPC:
        return os_error(error, path, "cannot write the checkpoint")
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        free = None
    if isinstance(error, OSError) or (free is not None and free < 64 * 2**20):
        where = "" if free is None else f", {free / 2**20:.0f} MiB free"
        return ArcticError(
            f"{path}: cannot write the checkpoint: disk full{where} (the previous one is intact)"
        )
    return ArcticError(f"{path}: cannot write the checkpoint: {str(error).splitlines()[0]}")


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    checkpoint = load_torch_file(path, "checkpoint", "checkpoint")
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise DataError(path, f"not an arctic-kd checkpoint (expected format {FORMAT!r})")
    return checkpoint


def model_from_checkpoint(checkpoint: dict[str, Any]) -> nn.Module:
    """The trained network of a checkpoint, in eval mode."""
    model = build_model(checkpoint["model"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()


def rng_state(device: torch.device) -> dict[str, Any]:
    """Every random generator a training step can touch, in a form `weights_only=True` loads."""
    version, internal, gauss = random.getstate()
    numpy = np.random.get_state(legacy=False)
    state = {
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
        "numpy": {
            "key": numpy["state"]["key"].tolist(),
            "pos": numpy["state"]["pos"],
            "has_gauss": numpy["has_gauss"],
            "gauss": numpy["gauss"],
        },
        "torch": torch.get_rng_state(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng_state(state: dict[str, Any], device: torch.device) -> None:
    python = state["python"]
    random.setstate((python["version"], tuple(python["internal"]), python["gauss"]))
    numpy = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": np.asarray(numpy["key"], dtype=np.uint32), "pos": numpy["pos"]},
            "has_gauss": numpy["has_gauss"],
            "gauss": numpy["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
