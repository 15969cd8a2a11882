import numpy as np
import pytest
import torch
from scipy.special import rel_entr
from scipy.stats import entropy

from medsyn.metrics.inception_score import inception_score, split_bounds


def _oracle(probs: np.ndarray, splits: int) -> tuple[float, float]:
    """Direct formula with scipy's KL divergence, split as torch-fidelity 0.4.0 (metric_isc.py) and
    Salimans et al.'s code do: rows [i N // splits, (i + 1) N // splits)."""
    scores = []
    n = probs.shape[0]
    for i in range(splits):
        block = probs[i * n // splits : (i + 1) * n // splits].astype(np.float64)
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


# ---- issue 11 item 7: torch-fidelity splits and shuffle, float16 softmax --------------------------------------


def torch_fidelity_isc(logits: np.ndarray, splits: int, shuffle: bool, rng_seed: int = 2020) -> tuple[float, float]:
    """numpy port of torch_fidelity.metric_isc.isc_features_to_metric (v0.4.0), from logits."""
    n = logits.shape[0]
    if shuffle:
        logits = logits[np.random.RandomState(rng_seed).permutation(n)]
    logits = logits.astype(np.float64)
    log_p = logits - logits.max(1, keepdims=True)
    log_p = log_p - np.log(np.exp(log_p).sum(1, keepdims=True))
    p = np.exp(log_p)
    scores = []
    for i in range(splits):
        p_chunk, log_p_chunk = p[i * n // splits : (i + 1) * n // splits], log_p[i * n // splits : (i + 1) * n // splits]
        q_chunk = p_chunk.mean(0, keepdims=True)
        scores.append(np.exp((p_chunk * (log_p_chunk - np.log(q_chunk))).sum(1).mean()))
    return float(np.mean(scores)), float(np.std(scores))


def test_split_boundaries_put_the_larger_splits_last():
    assert [stop - start for start, stop in split_bounds(37, 4)] == [9, 9, 9, 10]  # np.array_split: 10, 9, 9, 9
    assert [stop - start for start, stop in split_bounds(103, 10)] == [10, 10, 10, 11, 10, 10, 11, 10, 10, 11]
    assert split_bounds(20, 10) == [(2 * i, 2 * i + 2) for i in range(10)]


@pytest.mark.parametrize("n, splits", [(37, 4), (103, 10), (50, 10), (11, 3)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_matches_torch_fidelity_when_n_is_not_divisible(n, splits, shuffle):
    logits = np.random.default_rng(n).normal(size=(n, 7)) * 2
    probs = torch.from_numpy(logits).softmax(dim=1)
    mean, std = inception_score(probs, splits=splits, shuffle_seed=2020 if shuffle else None)
    expected_mean, expected_std = torch_fidelity_isc(logits, splits, shuffle)
    assert mean == pytest.approx(expected_mean, rel=1e-12)
    assert std == pytest.approx(expected_std, rel=1e-9, abs=1e-14)


def test_the_old_array_split_boundaries_give_a_different_number():
    # guards the test above: with N not divisible the two conventions really differ on this data
    logits = np.random.default_rng(37).normal(size=(37, 7)) * 2
    probs = torch.from_numpy(logits).softmax(dim=1).numpy()
    old = [np.exp(np.mean([entropy(p, b.mean(0)) for p in b])) for b in np.array_split(probs, 4)]
    assert abs(inception_score(probs, splits=4)[0] - float(np.mean(old))) > 1e-6


@pytest.mark.parametrize("k", [10, 1000])
def test_float16_softmax_is_accepted_within_its_rounding(k):
    logits = torch.randn(200, k, generator=torch.Generator().manual_seed(k)) * 3
    probs16 = logits.softmax(dim=1).half()
    sums = probs16.double().sum(1)
    assert (sums - 1).abs().max() > 1e-4  # float16 rounding alone exceeds the float32 tolerance
    mean, std = inception_score(probs16, splits=10)
    # the same as the float64 score of the renormalised float16 values
    renormalised = probs16.double() / sums[:, None]
    assert (mean, std) == pytest.approx(_oracle(renormalised.numpy(), 10), rel=1e-9)


@pytest.mark.parametrize("k, expected_tolerance", [(10, 0.0052), (1000, 0.0117)])
def test_float16_rows_far_from_summing_to_one_are_still_refused(k, expected_tolerance):
    # tolerance (2 + log2 K) eps16 + K tiny16: 0.0052 for K = 10, 0.0117 for K = 1000; rows summing to 1.05 are
    # not a rounded softmax
    probs16 = torch.full((20, k), 1.05 / k).half()
    assert float(probs16.double().sum(1).min()) > 1.04
    with pytest.raises(ValueError, match=f"sum to 1 within {expected_tolerance}"):
        inception_score(probs16, splits=2)


@pytest.mark.parametrize(
    "value, kwargs, message",
    [
        (np.full((10, 2), 0.5, dtype=np.complex128), {}, "probabilities must be real"),
        (np.full((10, 2), 0.5), {"shuffle_seed": 1.5}, "shuffle_seed"),
    ],
)
def test_complex_probabilities_and_bad_shuffle_seed_are_refused(value, kwargs, message):
    with pytest.raises(ValueError, match=message):
        inception_score(value, splits=2, **kwargs)
