"""FitNets: Romero et al., "FitNets: Hints for Thin Deep Nets" (ICLR 2015).

A regressor maps the student's "guided" layer onto the teacher's "hint" layer and the two are compared
with a mean squared error. The paper picks the middle layer of each network and trains the hint in a
separate first stage; we train it jointly in one stage with the task loss, as mdistiller does (hint weight
100, its published default; CE weight 1). Our networks have stages stem, layer1 … layer4, so the middle
one — mdistiller's hint layer 2 — is `layer2` (`distill.fitnets.stage`). The regressor is a 1×1×1
convolution + BatchNorm + ReLU (mdistiller's ConvReg for equal resolutions; the hint, a stage output, is
itself post-ReLU); when student and teacher clips differ in size, the regressed map is resampled to the
teacher's (T, H, W).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from arctic_kd.config.distill import DistillConfig
from arctic_kd.distill.base import MatchingDistiller, Outputs


class FitNets(MatchingDistiller):
    def __init__(
        self, student: nn.Module, teacher: nn.Module, config: DistillConfig, label_smoothing: float = 0.0
    ):
        super().__init__(student, teacher, label_smoothing=label_smoothing)
        self.settings = config.fitnets
        stage = config.fitnets.stage
        self.regressor = nn.Sequential(
            nn.Conv3d(student.stage_channels[stage], teacher.stage_channels[stage], 1, bias=False),
            nn.BatchNorm3d(teacher.stage_channels[stage]),
            nn.ReLU(),
        )

    def distill_losses(self, teacher: Outputs, student: Outputs, labels: Tensor) -> dict[str, Tensor]:
        hint = teacher.features[self.settings.stage].float()
        guided = self.regressor(student.features[self.settings.stage]).float()
        if guided.shape[2:] != hint.shape[2:]:
            guided = F.interpolate(guided, size=hint.shape[2:], mode="trilinear", align_corners=False)
        return {"hint": self.settings.weight * F.mse_loss(guided, hint)}
