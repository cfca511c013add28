"""Shared fixtures: one tiny synthetic NTU dataset, rendered once per test session."""

from __future__ import annotations

import pytest
import torch

from arctic_kd.data.synth import SynthConfig, generate

# 2 classes × 3 performers (P001, P002 train and P003 test in NTU60 cross-subject) × 3 cameras.
TINY_SYNTH = SynthConfig(num_classes=2, performers=3, setups=2, replications=1, min_frames=10, max_frames=12)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synth") / "tiny", TINY_SYNTH, workers=2, progress=False)


@pytest.fixture(autouse=True)
def seeded_torch():
    """Every test body draws the same random tensors whatever tests ran before it, so a failure reproduces
    when the test runs alone (module- and session-scoped fixtures are built before this seeds)."""
    torch.manual_seed(0)
