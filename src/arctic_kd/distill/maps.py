"""The map primitives the distillers share: attention maps and channel energies, batch similarity rows,
class activation maps (CAM, Grad-CAM), their normalisation and their warp from one camera's crop onto
another's. ARCTIC, AT, SP and the agreement meter import them from here, so no method imports another.
Everything runs in fp32 with autocast switched off (`full_precision`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from arctic_kd.distill.base import full_precision


@full_precision
def similarity_rows(features: Tensor) -> Tensor:
    """Row-normalised batch similarity matrix G = rownorm(Q Qᵀ) of flattened features (B, B), fp32."""
    flat = features.float().flatten(1)
    return F.normalize(flat @ flat.t(), dim=1)


@full_precision
def attention_map(features: Tensor, size: tuple[int, int, int] | None = None) -> Tensor:
    """L2-normalised spatio-temporal attention mean_c F² (B, T·H·W), optionally resampled to `size`."""
    energy = channel_energy(features)
    return normalised_energies(energy if size is None else resample_energy(energy, size))[:, 0]


@full_precision
def channel_energy(features: Tensor) -> Tensor:
    """mean_c F² (B, 1, T, H, W) in fp32: the costly half of an attention map, worth computing once."""
    return features.float().pow(2).mean(dim=1, keepdim=True)


@full_precision
def normalised_energies(energies: Tensor) -> Tensor:
    """K channel energies (B, K, T, H, W) as K L2-normalised attention maps (B, K, T·H·W)."""
    return F.normalize(energies.float().flatten(2), dim=2)


def resample_energy(energy: Tensor, size: tuple[int, int, int]) -> Tensor:
    """Energies (B, K, T, H, W) resampled trilinearly to `size` (T, H, W), so maps of two networks compare."""
    if tuple(energy.shape[2:]) == tuple(size):
        return energy
    return F.interpolate(energy, size=size, mode="trilinear", align_corners=False)


@full_precision
def normalise_maps(maps: Tensor) -> Tensor:
    """Per-sample min-max normalisation to [0, 1] over all positions; a flat map becomes zeros."""
    flat = maps.float().flatten(1)
    low, high = flat.min(dim=1, keepdim=True).values, flat.max(dim=1, keepdim=True).values
    return ((flat - low) / (high - low).clamp_min(1e-6)).view_as(maps)


@full_precision
def warp_to(maps: Tensor, size: tuple[int, int, int], theta: Tensor | None = None) -> Tensor:
    """Resample (B, T, H, W) maps to `size`; with `theta` (B, 2, 3), an affine map from the target's
    normalised image coordinates to the source's (RGB→IR registration), applied to every frame."""
    maps = maps.float()[:, None]
    if theta is None:
        return F.interpolate(maps, size=size, mode="trilinear", align_corners=False)[:, 0]
    batch = maps.shape[0]
    affine = torch.zeros(batch, 3, 4, dtype=maps.dtype, device=maps.device)
    affine[:, :2, :2] = theta[:, :, :2].to(maps)
    affine[:, :2, 3] = theta[:, :, 2].to(maps)
    affine[:, 2, 2] = 1.0
    grid = F.affine_grid(affine, [batch, 1, *size], align_corners=False)
    return F.grid_sample(maps, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0]


@full_precision
def class_maps(
    model: nn.Module, last_stage: Tensor, classes: Tensor, fixed_classifier: bool = False
) -> Tensor:
    """The class activation map of one class per sample: (B, T, H, W)."""
    cams = model.class_activation_map(last_stage.float(), fixed_classifier)
    return cams[torch.arange(len(classes), device=cams.device), classes]


@full_precision
def grad_cam(logits: Tensor, features: dict[str, Tensor], stages: tuple[str, ...], classes: Tensor) -> Tensor:
    """Grad-CAM maps of `classes` at several stages, each resampled to the last stage's size and averaged.

    Channel weights are detached (standard practice), so a student's maps stay differentiable through its
    features without second-order gradients.
    """
    score = logits.gather(1, classes[:, None]).sum()
    grads = torch.autograd.grad(score, [features[s] for s in stages], retain_graph=True)
    size = tuple(features[stages[-1]].shape[2:])
    maps = []
    for stage, grad in zip(stages, grads, strict=True):
        weights = grad.float().mean(dim=(2, 3, 4), keepdim=True).detach()
        cam = F.relu((weights * features[stage].float()).sum(1))
        maps.append(normalise_maps(warp_to(cam, size)))
    return torch.stack(maps).mean(0)
