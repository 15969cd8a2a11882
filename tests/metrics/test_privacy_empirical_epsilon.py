"""Empirical epsilon: kNN density against known densities, the dimension factor, Isomap on real data only,
and the victim/ablated experiment wiring."""

import json
import math

import numpy as np
import pytest
import scipy.stats
import torch

from medsyn.data.image_set import ImageSet
from medsyn.metrics.privacy import (
    empirical_epsilon,
    empirical_epsilon_from_samples,
    knn_log_density,
    minority_class_queries,
    run_empirical_epsilon_experiment,
)
from medsyn.metrics.privacy.knn_density import log_unit_ball_volume

# A one-sample minority class is its own connected component of the Isomap graph: sklearn warns and
# completes the graph, which is the intended behaviour here.
pytestmark = [
    pytest.mark.filterwarnings("ignore:The number of connected components:UserWarning"),
    pytest.mark.filterwarnings("ignore::scipy.sparse.SparseEfficiencyWarning"),
]


@pytest.mark.parametrize("d, volume", [(1, 2.0), (2, math.pi), (3, 4.0 / 3.0 * math.pi), (4, math.pi**2 / 2)])
def test_unit_ball_volume(d, volume):
    assert math.exp(log_unit_ball_volume(d)) == pytest.approx(volume)


def test_density_of_uniform_ball_at_its_centre():
    # uniform in the 3-ball of radius 2: p = 1 / (V_3 * 2^3) everywhere inside
    rng = np.random.default_rng(0)
    d, n, radius = 3, 200000, 2.0
    directions = rng.normal(size=(n, d))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    points = directions * radius * rng.random(n)[:, None] ** (1 / d)
    queries = rng.normal(scale=0.1, size=(20, d))
    estimate = np.exp(knn_log_density(queries, points, k=1000, dim=d)).mean()
    truth = 1.0 / (4.0 / 3.0 * math.pi * radius**3)
    assert estimate == pytest.approx(truth, rel=0.08)  # relative sd of the kNN estimate ~ 1/sqrt(k)


@pytest.mark.parametrize("d", [2, 4])
def test_density_of_gaussian_matches_scipy(d):
    rng = np.random.default_rng(d)
    points = rng.normal(size=(50000, d))
    queries = np.array([np.zeros(d), np.full(d, 0.5)])
    estimate = knn_log_density(queries, points, k=200)
    truth = scipy.stats.multivariate_normal(mean=np.zeros(d)).logpdf(queries)
    np.testing.assert_allclose(estimate, truth, atol=0.15)


def test_formula_by_hand_tiny_case():
    samples = np.array([[0.0, 1.0], [0.0, -3.0], [2.0, 0.0]])
    # from the origin: distances 1, 3, 2 -> r_2 = 2; p = 2 / (3 * pi * 2^2)
    value = knn_log_density(np.zeros(2), samples, k=2)
    assert math.exp(value[0]) == pytest.approx(2.0 / (3.0 * math.pi * 4.0))


def test_identical_sets_give_zero_epsilon():
    rng = np.random.default_rng(1)
    points = rng.normal(size=(300, 3))
    result = empirical_epsilon_from_samples(rng.normal(size=(4, 3)), points, points.copy(), k=5)
    assert result["value"] == 0.0 and result["max"] == 0.0


@pytest.mark.parametrize("d", [1, 2, 5])
def test_dimension_factor_is_present(d):
    # Ablated set = victim set scaled by c about the query: every kNN radius grows by c, so the density
    # ratio is c^d and epsilon = d * ln c exactly. Without the exponent d it would be ln c.
    rng = np.random.default_rng(d)
    query = rng.normal(size=d)
    victim = query + rng.normal(size=(200, d))
    c = 1.7
    ablated = query + c * (victim - query)
    result = empirical_epsilon_from_samples(query, victim, ablated, k=7, dim=d)
    assert result["value"] == pytest.approx(d * math.log(c), rel=1e-9)
    assert result["log_density_victim"][0] > result["log_density_ablated"][0]


def test_sample_size_enters_the_ratio():
    # Every point duplicated (jittered by 1e-9): n doubles and r_{2k} of the doubled set equals r_k of the
    # original, so k/(n r^d) must give the same density: the n in the denominator is there.
    rng = np.random.default_rng(5)
    victim = rng.normal(size=(500, 2))
    doubled = np.concatenate([victim, victim + 1e-9])
    log_double = knn_log_density(np.zeros(2), doubled, k=4)[0]
    log_single = knn_log_density(np.zeros(2), victim, k=2)[0]
    assert log_double == pytest.approx(log_single, abs=1e-6)


def test_bad_inputs():
    points = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match="k must"):
        knn_log_density(np.zeros(2), points, k=11)
    with pytest.raises(ValueError, match="dim=3"):
        knn_log_density(np.zeros(2), points, k=2, dim=3)
    with pytest.raises(ValueError, match="distance 0"):
        knn_log_density(points[0], np.repeat(points[:1], 3, axis=0), k=2)
    with pytest.raises(ValueError, match="same dimension"):
        empirical_epsilon_from_samples(np.zeros(2), points, np.ones((5, 3)), k=2)
    with pytest.raises(ValueError, match="NaN"):
        knn_log_density(np.array([np.nan, 0.0]), points, k=2)


def _digit_like_data(seed=0, n_per_class=(30, 30, 4)):
    # three classes of 6x6 images: class-specific mean patterns plus noise
    rng = np.random.default_rng(seed)
    patterns = rng.random((3, 1, 6, 6))
    images, labels = [], []
    for label, count in enumerate(n_per_class):
        images.append(np.clip(patterns[label] + 0.1 * rng.normal(size=(count, 1, 6, 6)), 0, 1))
        labels += [label] * count
    return np.concatenate(images).astype(np.float32), np.array(labels)


def test_empirical_epsilon_detects_a_memorised_query_and_fits_isomap_on_real_only():
    images, labels = _digit_like_data()
    query_index = int(np.flatnonzero(labels == 2)[0])
    rng = np.random.default_rng(1)
    generic = np.clip(images[rng.integers(0, 60, 300)] + 0.05 * rng.normal(size=(300, 1, 6, 6)), 0, 1)
    memorising = generic.copy()
    memorising[:40] = np.clip(images[query_index] + 0.01 * rng.normal(size=(40, 1, 6, 6)), 0, 1)
    leaky = empirical_epsilon(images, images[[query_index]], [memorising], [generic], k=5)
    private = empirical_epsilon(images, images[[query_index]], [generic], [generic.copy()], k=5)
    assert leaky["empirical_epsilon"]["value"] > 1.0
    assert private["empirical_epsilon"]["value"] == 0.0
    # the embedding is a function of the real training data only
    assert leaky["embedding"]["real_train"] == private["embedding"]["real_train"]
    assert len(leaky["embedding"]["real_train"]) == len(images)
    assert leaky["empirical_epsilon"]["dim"] == 2


def test_minority_class_queries():
    labels = np.array([0] * 5 + [1] * 2 + [2] * 3)
    picked = minority_class_queries(labels, 2, seed=0)
    assert picked == [5, 6]
    with pytest.raises(ValueError, match="n_queries"):
        minority_class_queries(labels, 3, seed=0)


class MemorisingGenerator:
    """Samples = noisy copies of its training images of the requested class (a maximally leaky model)."""

    def __init__(self, train_set, seed):
        self.train_set, self.seed = train_set, seed

    def sample(self, labels, seed=0):
        rng = np.random.default_rng(seed)
        out = []
        for label in labels.tolist():
            pool = np.flatnonzero(self.train_set.labels.numpy() == label)
            if len(pool) == 0:  # class absent from training: the model can only guess
                pool = np.arange(len(self.train_set))
            base = self.train_set.images[int(rng.choice(pool))].numpy()
            out.append(np.clip(base + 0.02 * rng.normal(size=base.shape), 0, 1))
        return torch.from_numpy(np.stack(out).astype(np.float32))


def test_experiment_trains_victim_and_ablated_on_neighbouring_sets():
    images, labels = _digit_like_data(n_per_class=(25, 25, 1))
    train_set = ImageSet(torch.from_numpy(images), torch.from_numpy(labels), ("a", "b", "c"), "toy")
    calls = []

    def train_fn(data, seed):
        calls.append((len(data), seed, data))
        return MemorisingGenerator(data, seed)

    query = minority_class_queries(labels, 1, seed=0)
    result = run_empirical_epsilon_experiment(
        train_set, train_fn, query_indices=query, seeds=[0, 1], samples_per_class=40, k=5
    )
    sizes = [(size, seed) for size, seed, _ in calls]
    assert sizes == [(51, 0), (50, 0), (51, 1), (50, 1)]  # victim then ablated, per seed
    ablated_set = calls[1][2]
    assert not any(torch.equal(img, train_set.images[query[0]]) for img in ablated_set.images)
    summary = result["empirical_epsilon"]
    assert summary["n_trials"] == 2 and summary["seeds"] == [0, 1] and summary["query_indices"] == query
    assert summary["value"] > 1.0  # the victim reproduces the lone minority sample, the ablated cannot
    assert math.isfinite(summary["max"])
    json.dumps(result, allow_nan=False)  # the report writes it as is


def test_experiment_bad_arguments():
    images, labels = _digit_like_data()
    train_set = ImageSet(torch.from_numpy(images), torch.from_numpy(labels), ("a", "b", "c"), "toy")
    with pytest.raises(ValueError, match="query_indices"):
        run_empirical_epsilon_experiment(train_set, MemorisingGenerator, query_indices=[999], seeds=[0],
                                         samples_per_class=5)
    with pytest.raises(ValueError, match="train_set"):
        run_empirical_epsilon_experiment(images, MemorisingGenerator, query_indices=[0], seeds=[0],
                                         samples_per_class=5)
