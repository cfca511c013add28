"""SP: Tung & Mori, "Similarity-Preserving Knowledge Distillation" (ICCV 2019).

Samples that the teacher finds similar should be similar for the student: the row-normalised batch
similarity matrices G = rownorm(Q Qᵀ) of flattened features are compared, 1/b²·‖G_T − G_S‖²_F per stage
pair. Published default γ = 3000 on the last stage's output, as in the paper and mdistiller
(`distill.sp`). G is b × b whatever the feature shapes, so widths and clip sizes may differ.
"""

from __future__ import annotations

from torch import Tensor

from arctic_kd.distill.base import SummedOverStages
from arctic_kd.distill.maps import similarity_rows


def similarity_preserving(teacher: Tensor, student: Tensor) -> Tensor:
    """1/b²·‖G_T − G_S‖²_F for one pair of feature maps, fp32."""
    batch = teacher.shape[0]
    return (similarity_rows(teacher) - similarity_rows(student)).pow(2).sum() / batch**2


class SP(SummedOverStages):
    name = "sp"
    stage_loss = staticmethod(similarity_preserving)
