"""Top-k adversarial accuracy (paper 000 §5.2: top-3 for CheXpert): an attacked image is robust when its true
class stays among the k largest logits after DeepFool."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medsyn.data.image_set import ImageSet
from medsyn.metrics.robustness import adversarial_accuracies, adversarial_accuracy, deepfool


def _ramp_model() -> nn.Sequential:
    """Logits of a one-pixel image x: (0, x - 0.5, -1, -2); the only boundary x can cross is 0 | 1 at x = 0.5."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(1, 4))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[0.0], [1.0], [0.0], [0.0]]))
        model[1].bias.copy_(torch.tensor([0.0, -0.5, -1.0, -2.0]))
    return model


@pytest.mark.parametrize("engine", ["autograd", "sequential"])
def test_known_answer_on_a_linear_model(engine):
    # A: x 0.3, label 0, correct; DeepFool moves it just past 0.5 -> order (1, 0, 2, 3): true class 2nd.
    # B: x 0.9, label 0, misclassified from the start (left untouched) -> order (1, 0, 2, 3): 2nd.
    # C: x 0.9, label 3 -> class 3 is 4th: outside the top 3.
    # D: x 0.9, label 1, correct; moved just below 0.5 -> order (0, 1, 2, 3): true class 2nd.
    images = torch.tensor([0.3, 0.9, 0.9, 0.9]).view(4, 1, 1, 1)
    labels = torch.tensor([0, 0, 3, 1])
    test = ImageSet(images, labels, ("a", "b", "c", "d"), "ramp")
    scores = adversarial_accuracies(_ramp_model(), test, steps=5, engine=engine, top_ks=(1, 2, 3, 4))
    assert scores == {1: 0.0, 2: 0.75, 3: 0.75, 4: 1.0}
    assert adversarial_accuracy(_ramp_model(), test, steps=5, engine=engine, top_k=3) == 0.75
    assert adversarial_accuracy(_ramp_model(), test, steps=5, engine=engine) == 0.0


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_a_brute_force_oracle(seed):
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5)).double()
    images = torch.rand(40, 1, 6, 6, generator=generator).double()  # float32 values: what the test set holds
    labels = torch.randint(0, 5, (40,), generator=generator)
    test = ImageSet(images.float(), labels, tuple("abcde"), "random")
    scores = adversarial_accuracies(model, test, steps=5, engine="autograd", top_ks=(1, 3))
    adversarial = deepfool(model, images, labels, steps=5, engine="autograd")
    with torch.no_grad():
        logits = model(adversarial)
    # rank of the true class = how many classes have a strictly larger logit; robust at k when rank < k
    for k in (1, 3):
        robust = [sum(int(logits[i, c] > logits[i, labels[i]]) for c in range(5)) < k for i in range(40)]
        assert scores[k] == pytest.approx(sum(robust) / 40, abs=1e-12)
    assert scores[1] <= scores[3]


def test_bad_top_k_is_refused():
    test = ImageSet(torch.full((2, 1, 1, 1), 0.3), torch.tensor([0, 1]), ("a", "b", "c", "d"), "ramp")
    for bad in (0, 5, True, 2.0):
        with pytest.raises(ValueError, match=r"top_k must be an integer in \[1, 4\]"):
            adversarial_accuracy(_ramp_model(), test, top_k=bad)
    with pytest.raises(ValueError, match="top_ks must be a non-empty tuple"):
        adversarial_accuracies(_ramp_model(), test, top_ks=())
