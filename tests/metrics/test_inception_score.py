import numpy as np
import pytest
import torch
from scipy.special import rel_entr
from scipy.stats import entropy

from medsyn.metrics.inception_score import inception_score


def _oracle(probs: np.ndarray, splits: int) -> tuple[float, float]:
    """Direct formula with scipy's KL divergence, split as np.array_split does."""
    scores = []
    for block in np.array_split(probs.astype(np.float64), splits):
        marginal = block.mean(axis=0)
        scores.append(np.exp(np.mean([entropy(p, marginal) for p in block])))
    return float(np.mean(scores)), float(np.std(scores))


@pytest.mark.parametrize("n, k, splits", [(100, 10, 10), (37, 3, 4), (5, 7, 1)])
def test_matches_a_scipy_oracle(n, k, splits):
    logits = torch.randn(n, k, generator=torch.Generator().manual_seed(n))
    probs = logits.softmax(dim=1)
    mean, std = inception_score(probs, splits=splits)
    expected_mean, expected_std = _oracle(probs.numpy(), splits)
    assert mean == pytest.approx(expected_mean, rel=1e-6)
    assert std == pytest.approx(expected_std, rel=1e-5, abs=1e-9)


def test_known_values_one_hot_balanced_is_k_and_identical_predictions_is_one():
    k = 5
    one_hot = np.eye(k)[np.arange(50) % k]  # confident and balanced: IS = K
    assert inception_score(one_hot, splits=1) == pytest.approx((5.0, 0.0))
    same = np.tile(np.array([[0.7, 0.2, 0.1]]), (30, 1))  # every sample predicted alike: IS = 1
    assert inception_score(same, splits=3)[0] == pytest.approx(1.0)
    # zeros in the probabilities count as 0 log 0 = 0
    assert np.isfinite(rel_entr(one_hot[0], one_hot.mean(0)).sum())


@pytest.mark.parametrize(
    "value, splits, message",
    [
        (np.full((10, 3), 0.5), 2, "sum to 1"),
        (np.array([[1.5, -0.5]] * 10), 2, ">= 0"),
        (np.full((3, 2), 0.5), 10, "at least 10"),
        (np.full((10, 2), np.nan), 2, "NaN"),
        (np.full((10, 2), 0.5), 0, "splits"),
    ],
)
def test_bad_input_names_the_problem(value, splits, message):
    with pytest.raises(ValueError, match=message):
        inception_score(value, splits=splits)
