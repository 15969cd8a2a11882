"""Robustness (paper 000 §4.1.5): accuracy on DeepFool-perturbed real test images, 5 steps.

    adversarial = deepfool(model, images, labels, steps=5, num_classes=10)
    robustness = adversarial_accuracy(model, test_set, steps=5)               # float in [0, 1]
    adversarial_accuracies(model, test_set, top_ks=(1, 3))                    # {1: ..., 3: ...}, one attack
    resolve_engine(model, images, "auto")                                     # "autograd" | "sequential"

One switch, ``engine="auto" | "autograd" | "sequential"`` on both functions, picks how the gradients are
taken (``policy`` holds the choice, every threshold and the measurements behind them):

- ``attack``: DeepFool itself and ``adversarial_accuracy``;
- ``autograd_engine``: the reference, plain torch autograd (any model, device, dtype);
- ``sequential_engine``: the accelerator for ``nn.Sequential`` ReLU CNNs on the CPU (explicit batched
  backward, compiled kernels in ``csrc/cpu``);
- ``column_gradient``: the GEMM + col2im convolution input gradient both engines can use;
- ``policy``: ``resolve_engine`` and the predicates deciding which engine and kernels run.
"""

from medsyn.metrics.robustness.attack import (
    DEEPFOOL_OVERSHOOT,
    DEEPFOOL_STEPS,
    ROBUSTNESS_DTYPE,
    adversarial_accuracies,
    adversarial_accuracy,
    deepfool,
)
from medsyn.metrics.robustness.policy import ENGINES, resolve_engine

__all__ = [
    "DEEPFOOL_OVERSHOOT",
    "DEEPFOOL_STEPS",
    "ENGINES",
    "ROBUSTNESS_DTYPE",
    "adversarial_accuracies",
    "adversarial_accuracy",
    "deepfool",
    "resolve_engine",
]
