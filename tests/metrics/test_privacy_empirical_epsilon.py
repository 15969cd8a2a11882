"""Empirical epsilon (paper 001 §3.2): kNN density against known densities, the two conventions on Gaussians
with a known density ratio, the neighbouring sets as index sets, the capped stratified Isomap fit set, the
query class, and the victim/ablated experiment wiring."""

import importlib
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
from medsyn.metrics.privacy.empirical_epsilon import (
    RESULT_NAMES,
    fit_isomap,
    isomap_fit_indices,
    log_density_ratio,
    neighbouring_sets,
    noisy_copies,
    query_class_of,
    worst_and_mean,
)
from medsyn.metrics.privacy.knn_density import knn_radius, log_unit_ball_volume

# the module (the package's attribute of that name is the function)
ee = importlib.import_module("medsyn.metrics.privacy.empirical_epsilon")

# A one-sample class is its own connected component of the Isomap graph: sklearn warns and completes the
# graph, which is the intended behaviour here.
pytestmark = [
    pytest.mark.filterwarnings("ignore:The number of connected components:UserWarning"),
    pytest.mark.filterwarnings("ignore::scipy.sparse.SparseEfficiencyWarning"),
]


# --- kNN density ------------------------------------------------------------------------------------------------


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
    assert knn_radius(np.zeros(2), samples, k=2)[0] == 2.0


def test_sample_size_enters_the_ratio():
    # Every point duplicated (jittered by 1e-9): n doubles and r_{2k} of the doubled set equals r_k of the
    # original, so k/(n r^d) must give the same density: the n in the denominator is there.
    rng = np.random.default_rng(5)
    victim = rng.normal(size=(500, 2))
    doubled = np.concatenate([victim, victim + 1e-9])
    log_double = knn_log_density(np.zeros(2), doubled, k=4)[0]
    log_single = knn_log_density(np.zeros(2), victim, k=2)[0]
    assert log_double == pytest.approx(log_single, abs=1e-6)


# --- the estimator and its two conventions ----------------------------------------------------------------------


def test_conventions_on_two_gaussians_with_a_known_density_ratio():
    # victim ~ N(0, I_2), ablated ~ N((1.5, 0), 1.3^2 I_2): ln p_v/p_a at each query is known in closed form.
    # with_d estimates it; the paper code's ln(r_a/r_v) estimates it divided by d = 2 (equal sample sizes).
    rng = np.random.default_rng(0)
    n, d = 200000, 2
    mean_a, scale_a = np.array([1.5, 0.0]), 1.3
    victim = rng.normal(size=(n, d))
    ablated = mean_a + scale_a * rng.normal(size=(n, d))
    queries = np.array([[-0.8, 0.0], [0.0, 0.0], [0.3, 0.4], [1.5, 0.0], [2.2, -0.3]])
    truth = (scipy.stats.multivariate_normal(np.zeros(d)).logpdf(queries)
             - scipy.stats.multivariate_normal(mean_a, scale_a**2 * np.eye(d)).logpdf(queries))
    assert truth[0] > 0.5 and truth[-1] < -0.5  # the case has both signs
    ratio = log_density_ratio(queries, victim, ablated, k=400)
    np.testing.assert_allclose(ratio["with_d"], truth, atol=0.12)
    np.testing.assert_allclose(ratio["paper_code"], truth / d, atol=0.06)
    np.testing.assert_allclose(ratio["with_d"], d * ratio["paper_code"], rtol=1e-12)  # n_v = n_a: exactly d times
    summary = empirical_epsilon_from_samples(queries, victim, ablated, k=400)
    for convention in ("paper_code", "with_d"):
        assert summary[f"worst_{convention}"] == max(ratio[convention])  # the worst query is the headline
        assert summary[f"mean_{convention}"] == pytest.approx(np.mean(ratio[convention]), abs=1e-12)
    # signed: where the victim is less likely than its ablated twin the estimate is negative (no |.| floor)
    assert summary["per_query"]["with_d"][-1] < -0.5 and summary["per_query"]["paper_code"][-1] < -0.25


@pytest.mark.parametrize("d", [1, 2, 5])
def test_dimension_factor_on_a_scaled_copy(d):
    # Ablated set = victim set scaled by c about the query: every kNN radius grows by c, so the paper code
    # gives ln c and the density ratio is c^d: with_d = d * ln c, exactly.
    rng = np.random.default_rng(d)
    query = rng.normal(size=d)
    victim = query + rng.normal(size=(200, d))
    c = 1.7
    ablated = query + c * (victim - query)
    ratio = log_density_ratio(query, victim, ablated, k=7)
    assert ratio["paper_code"][0] == pytest.approx(math.log(c), rel=1e-9)
    assert ratio["with_d"][0] == pytest.approx(d * math.log(c), rel=1e-9)
    assert ratio["dim"] == d and ratio["n_victim"] == ratio["n_ablated"] == 200


def test_identical_sets_give_zero_in_both_conventions():
    rng = np.random.default_rng(1)
    points = rng.normal(size=(300, 3))
    summary = empirical_epsilon_from_samples(rng.normal(size=(4, 3)), points, points.copy(), k=5)
    assert all(summary[f"{s}_{c}"] == 0.0 for s in ("worst", "mean") for c in ("paper_code", "with_d"))


def test_worst_and_mean_by_hand():
    assert worst_and_mean([-1.0, 0.5, 2.0]) == {"worst": 2.0, "mean": 0.5}
    assert worst_and_mean([-3.0, -1.0]) == {"worst": -1.0, "mean": -2.0}  # signed, no floor
    with pytest.raises(ValueError, match="finite"):
        worst_and_mean([1.0, float("nan")])


def test_result_names_say_the_statistic_and_the_convention():
    assert sorted(RESULT_NAMES.values()) == [
        "empirical_epsilon_mean_paper_code", "empirical_epsilon_mean_with_d",
        "empirical_epsilon_worst_paper_code", "empirical_epsilon_worst_with_d"]


def test_bad_inputs():
    points = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match="k must"):
        knn_log_density(np.zeros(2), points, k=11)
    with pytest.raises(ValueError, match="dim=3"):
        knn_log_density(np.zeros(2), points, k=2, dim=3)
    with pytest.raises(ValueError, match="distance 0"):
        knn_log_density(points[0], np.repeat(points[:1], 3, axis=0), k=2)
    with pytest.raises(ValueError, match="same dimension"):
        log_density_ratio(np.zeros(2), points, np.ones((5, 3)), k=2)
    with pytest.raises(ValueError, match="NaN"):
        knn_log_density(np.array([np.nan, 0.0]), points, k=2)


# --- neighbouring sets and the query ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_neighbouring_sets_differ_by_exactly_the_query(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=60)
    query = int(rng.choice(np.flatnonzero(labels == 2)))
    sets = neighbouring_sets(labels, query)
    # oracle: the paper's sets written as set comprehensions over the labels
    expected_ablated = {i for i, label in enumerate(labels.tolist()) if label != 2}
    assert set(sets.ablated.tolist()) == expected_ablated
    assert set(sets.victim.tolist()) == expected_ablated | {query}
    assert set(sets.victim.tolist()) ^ set(sets.ablated.tolist()) == {query}
    assert [i for i in sets.victim.tolist() if labels[i] == 2] == [query]  # the query alone in its class
    assert not any(labels[i] == 2 for i in sets.ablated.tolist())  # the query class is absent
    assert sets.query_class == 2 and sets.query_index == query
    assert list(sets.victim) == sorted(sets.victim) and len(set(sets.victim.tolist())) == len(sets.victim)


def test_neighbouring_sets_bad_input():
    with pytest.raises(ValueError, match="query_index"):
        neighbouring_sets([0, 1, 1], 3)
    with pytest.raises(ValueError, match="ablated set would be empty"):
        neighbouring_sets([1, 1, 1], 0)


@pytest.mark.parametrize("source, expected", [
    ("/data/mnist.npz", (0, "paper 001 default for mnist")),
    ("/data/octmnist.npz", (0, "paper 001 default for octmnist")),
    ("organamnist_64.npz", (3, "paper 001 default for organamnist")),
    ("/my data/OrganAMNIST.npz", (3, "paper 001 default for organamnist")),
    ("sklearn-digits", (1, "least frequent class (no paper default for this data set)")),
])
def test_query_class_paper_defaults_else_least_frequent(source, expected):
    labels = np.array([0] * 5 + [1] * 2 + [2] * 3 + [3] * 4)
    assert query_class_of(labels, source) == expected
    assert query_class_of(labels, source, query_class=2) == (2, "configured")
    with pytest.raises(ValueError, match="query_class 7 has no training image"):
        query_class_of(labels, source, query_class=7)


def test_minority_class_queries():
    labels = np.array([0] * 5 + [1] * 2 + [2] * 3)
    assert minority_class_queries(labels, 2, seed=0) == [5, 6]  # least frequent class 1
    picked = minority_class_queries(labels, 2, seed=0, query_class=0)
    assert len(picked) == 2 and all(labels[i] == 0 for i in picked)
    octmnist = minority_class_queries(labels, 3, seed=0, source="/data/octmnist.npz")  # paper class 0, not 1
    assert len(octmnist) == 3 and all(labels[i] == 0 for i in octmnist)
    with pytest.raises(ValueError, match="n_queries"):
        minority_class_queries(labels, 3, seed=0)


# --- the Isomap fit set -------------------------------------------------------------------------------------------


def test_isomap_fit_set_is_a_seeded_stratified_capped_subsample():
    labels = np.array([0] * 50 + [1] * 7 + [2] * 30)
    picked = isomap_fit_indices(labels, per_class=10, seed=3)
    assert np.bincount(labels[picked]).tolist() == [10, 7, 10]  # min(cap, class size) per class
    assert len(set(picked.tolist())) == len(picked) and list(picked) == sorted(picked)
    assert np.array_equal(picked, isomap_fit_indices(labels, per_class=10, seed=3))  # seeded
    assert not np.array_equal(picked, isomap_fit_indices(labels, per_class=10, seed=4))
    assert np.array_equal(isomap_fit_indices(labels, per_class=200, seed=0), np.arange(len(labels)))


def test_noisy_copies_follow_the_originals_and_stay_in_range():
    rng = np.random.default_rng(0)
    points = rng.random((6, 9))
    out = noisy_copies(points, (0.01, 0.5), seed=1)
    assert out.shape == (18, 9) and np.array_equal(out[:6], points)
    assert out.min() >= 0 and out.max() <= 1
    assert np.abs(out[6:12] - points).max() < 0.1 < np.abs(out[12:] - points).max()
    assert noisy_copies(points, (), seed=1) is points
    with pytest.raises(ValueError, match=r"images in \[0, 1\]"):
        noisy_copies(points * 3, (0.1,), seed=0)


def test_arpack_isomap_is_seeded_and_leaves_the_global_rng_alone(monkeypatch):
    monkeypatch.setattr(ee, "_DENSE_SOLVER_MAX_POINTS", 50)
    points = np.random.default_rng(0).random((120, 8))
    np.random.seed(123)
    before = np.random.random()
    np.random.seed(123)
    first, cost = fit_isomap(points, n_neighbors=8, seed=5)
    assert np.random.random() == before  # the caller's global state is given back
    second, _cost = fit_isomap(points, n_neighbors=8, seed=5)
    assert cost["eigen_solver"] == "arpack" and cost["fit_points"] == 120
    assert cost["geodesic_matrix_bytes"] == 120 * 120 * 8 and cost["fit_seconds"] >= 0
    np.testing.assert_array_equal(first.embedding_, second.embedding_)


def test_the_fit_set_does_not_grow_with_the_training_split():
    rng = np.random.default_rng(0)
    n = 20000  # the Isomap would need n^2 * 8 bytes = 3.2 GB on all of them
    labels = rng.integers(0, 2, size=n)
    images = np.clip(labels[:, None, None, None] * 0.5 + 0.2 * rng.random((n, 1, 4, 4)), 0, 1)
    synthetic = images[rng.integers(0, n, 200)]
    result = empirical_epsilon(images, labels, images[:1], [synthetic], [synthetic.copy()], k=5,
                               isomap_per_class=30, isomap_noise_sigmas=(0.01,), seed=0)
    isomap = result["empirical_epsilon"]["isomap"]
    assert isomap["real_images"] == 60 and isomap["fit_points"] == 120 and isomap["eigen_solver"] == "dense"
    assert len(result["embedding"]["real_train"]) == 60


# --- the experiment ---------------------------------------------------------------------------------------------


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
    leaky = empirical_epsilon(images, labels, images[[query_index]], [memorising], [generic], k=5)
    private = empirical_epsilon(images, labels, images[[query_index]], [generic], [generic.copy()], k=5)
    assert leaky["empirical_epsilon"]["worst_paper_code"] > 1.0
    assert leaky["empirical_epsilon"]["worst_with_d"] == pytest.approx(2 * leaky["empirical_epsilon"]["worst_paper_code"])
    assert private["empirical_epsilon"]["worst_paper_code"] == private["empirical_epsilon"]["worst_with_d"] == 0.0
    # the embedding is a function of the real training data only
    assert leaky["embedding"]["real_train"] == private["embedding"]["real_train"]
    isomap = leaky["empirical_epsilon"]["isomap"]
    assert isomap["real_images"] == len(images) and isomap["fit_points"] == 5 * len(images)  # 4 noisy copies each
    assert isomap["n_neighbors"] == 15 and leaky["empirical_epsilon"]["k"] == 5 and leaky["empirical_epsilon"]["dim"] == 2


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


def test_experiment_trains_victim_and_ablated_on_the_paper_neighbouring_sets():
    images, labels = _digit_like_data(n_per_class=(25, 25, 5))
    train_set = ImageSet(torch.from_numpy(images), torch.from_numpy(labels), ("a", "b", "c"), "toy")
    calls = []

    def train_fn(data, seed, name):
        calls.append((name, seed, data))
        return MemorisingGenerator(data, seed)

    queries = minority_class_queries(labels, 2, seed=0)  # class 2, the least frequent
    result = run_empirical_epsilon_experiment(
        train_set, train_fn, query_indices=queries, seeds=[0, 1], samples_per_class=40, k=5
    )
    # per seed: one ablated generator for the query class (shared by its queries), one victim per query
    assert [(name, seed) for name, seed, _ in calls] == [
        ("ablated_c2", 0), (f"victim_q{queries[0]}", 0), (f"victim_q{queries[1]}", 0),
        ("ablated_c2", 1), (f"victim_q{queries[0]}", 1), (f"victim_q{queries[1]}", 1)]
    ablated_set, victim_set = calls[0][2], calls[1][2]
    assert len(ablated_set) == 50 and ablated_set.class_counts() == [25, 25, 0]
    assert len(victim_set) == 51 and victim_set.class_counts() == [25, 25, 1]
    assert torch.equal(victim_set.images[victim_set.labels == 2][0], train_set.images[queries[0]])
    summary = result["empirical_epsilon"]
    assert summary["n_trials"] == 4 and summary["seeds"] == [0, 1] and summary["query_indices"] == queries
    assert summary["query_classes"] == [2] and summary["victim_sizes"] == [51] * 4 and summary["ablated_sizes"] == [50] * 4
    # the victim reproduces its lone class-2 image, the ablated twin never saw class 2
    assert summary["worst_paper_code"] >= summary["mean_paper_code"] > 1.0
    assert summary["worst_with_d"] == pytest.approx(2 * summary["worst_paper_code"])
    assert summary["worst_trial"] in [trial["label"] for trial in result["trials"]]
    json.dumps(result, allow_nan=False)  # the report writes it as is


def test_experiment_bad_arguments():
    images, labels = _digit_like_data()
    train_set = ImageSet(torch.from_numpy(images), torch.from_numpy(labels), ("a", "b", "c"), "toy")

    def train_fn(data, seed, name):
        return MemorisingGenerator(data, seed)

    with pytest.raises(ValueError, match="query_indices"):
        run_empirical_epsilon_experiment(train_set, train_fn, query_indices=[999], seeds=[0], samples_per_class=5)
    with pytest.raises(ValueError, match="train_set"):
        run_empirical_epsilon_experiment(images, train_fn, query_indices=[0], seeds=[0], samples_per_class=5)
    with pytest.raises(ValueError, match="real_labels"):
        empirical_epsilon(images, labels[:-1], images[:1], [images], [images])
