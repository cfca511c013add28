"""Synthetic paired RGB+IR action videos in the exact NTU RGB+D layout (the embedded default dataset)."""

from arctic_kd.data.synth.actions import ACTIONS
from arctic_kd.data.synth.dataset import SynthConfig, describe_settings, differences
from arctic_kd.data.synth.folder import generate, is_rendered, rendered_config

__all__ = [
    "ACTIONS",
    "SynthConfig",
    "describe_settings",
    "differences",
    "generate",
    "is_rendered",
    "rendered_config",
]
