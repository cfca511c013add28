"""AT: Zagoruyko & Komodakis, "Paying More Attention to Attention" (ICLR 2017).

Activation-based attention transfer: at every stage the student's spatial attention map Q = mean_c F^p
(p = 2), flattened and L2-normalised, should equal the teacher's. The paper writes the loss as
β/2·Σ_j ‖Q_S/‖Q_S‖ − Q_T/‖Q_T‖‖² with β = 1000 "divided by the number of elements in the attention map
and the batch size"; we use mdistiller's equivalent form, weight 1000 × Σ_stages mean((a_S − a_T)²), over
all four residual stages (`distill.at`). Maps of a student whose clips are of another size are resampled
to the teacher's (T, H, W) before normalising.
"""

from __future__ import annotations

from torch import Tensor

from arctic_kd.distill.base import SummedOverStages
from arctic_kd.distill.maps import attention_map


def attention_transfer(teacher: Tensor, student: Tensor) -> Tensor:
    """mean over batch and positions of (a_S − a_T)² for one stage's feature maps, fp32."""
    size = tuple(teacher.shape[2:])
    return (attention_map(student, size) - attention_map(teacher)).pow(2).mean()


class AT(SummedOverStages):
    name = "at"
    stage_loss = staticmethod(attention_transfer)
