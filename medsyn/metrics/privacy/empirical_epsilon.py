"""Empirical epsilon (paper 001 §3.2, after Galende et al. 2025): how much one training sample changes the
generator's density at that sample.

    epsilon = sup_{x_q} ln( p(x_q | theta_victim) / p(x_q | theta_ablated) )        (paper 001 eq. 1)

**Neighbouring sets** (:func:`neighbouring_sets`; paper 001 §4.2.1, §4.3.2 and the authors' ``get_subset``):
the victim trains on the scarce set in which the query's class holds only the query, the ablated twin on the
same set without it (the query class absent). The two differ by exactly the query, an outlier: the victim can
only learn that class from that one image.

**Estimator** (:func:`log_density_ratio`): both generators sample a class-balanced set; an Isomap embedding of
REAL training images (:func:`fit_isomap`, never synthetic or test data) maps the sets and the query to d
dimensions; r_v, r_a are the query's k-th neighbour distances among the victim and the ablated samples. Two
signed conventions, both reported:

    paper_code = ln(r_a / r_v)                                  (the authors' KNNPrivacyEstimator: no d)
    with_d     = ln p_v(x_q) - ln p_a(x_q) = d ln(r_a / r_v) + ln(n_a / n_v)   (the kNN density ratio)

with n_v = n_a (as here) ``with_d = d * paper_code``. Signed: a generator that is less likely at the query
than its ablated twin gives a negative value (no positive floor, unlike |.|).

**Over queries** (:func:`worst_and_mean`): the worst case (the sup of eq. 1) is the headline, the mean beside it.

**Isomap fit set** (:func:`isomap_fit_indices`, :func:`noisy_copies`): a seeded subsample of the real training
split stratified by class and capped per class (the authors fit on 200 images per class), plus the authors'
noisy copies; its size does not grow with the data set (the geodesic matrix is fit_points^2 float64).

The query class (:func:`query_class_of`): configured, else the paper's for MNIST / OCTMNIST / OrganAMNIST
(``PAPER_QUERY_CLASSES``), else the least frequent class (§3.2: "a minority class").

Training generators is the caller's job: :func:`train_neighbouring_generators` takes a
``train_fn(train_set, seed, name) -> generator`` callback; :func:`empirical_epsilon` works on sampled sets;
:func:`run_empirical_epsilon_experiment` does both.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medsyn.data.stored_images import StoredImages, image_tensor
from medsyn.metrics.privacy.knn_density import _as_points, knn_log_density, knn_radius

__all__ = [
    "DEFAULT_ISOMAP_NEIGHBORS",
    "DEFAULT_ISOMAP_NOISE_SIGMAS",
    "DEFAULT_ISOMAP_PER_CLASS",
    "DEFAULT_K",
    "DEFAULT_N_COMPONENTS",
    "DEFAULT_N_QUERIES",
    "DEFAULT_SAMPLES_PER_CLASS",
    "PAPER_QUERY_CLASSES",
    "RESULT_NAMES",
    "NeighbouringSets",
    "empirical_epsilon",
    "empirical_epsilon_from_samples",
    "fit_isomap",
    "isomap_fit_indices",
    "log_density_ratio",
    "minority_class_queries",
    "neighbouring_sets",
    "noisy_copies",
    "query_class_of",
    "run_empirical_epsilon_experiment",
    "train_neighbouring_generators",
    "worst_and_mean",
]

# The authors' settings (github.com/BorjaArroyo/synthetic-images-tradeoff): config/experiment_config.yaml
# (reducer_config.isomap, density_config.knn, samples_per_class) and src/privacy/reducer_manager.py (the
# Isomap is fitted on 200 real training images per class plus noisy copies at these sigmas, clamped to [0, 1]).
DEFAULT_K = 20
DEFAULT_N_COMPONENTS = 2  # also the 2-d projections of paper 001 Figs. 5, 8
DEFAULT_ISOMAP_NEIGHBORS = 15
DEFAULT_ISOMAP_PER_CLASS = 200
DEFAULT_ISOMAP_NOISE_SIGMAS: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5)
DEFAULT_SAMPLES_PER_CLASS = 100
DEFAULT_N_QUERIES = 1  # paper 001 §4.2.1: one query sample
# Paper 001 §4.2.1 (MNIST: digit 0), §4.3.1 and Figs. 13-14 (OCTMNIST: 0, OrganAMNIST: 3; §4.3.3's "0 label"
# for OrganAMNIST contradicts Fig. 14 and the authors' code, which use 3).
PAPER_QUERY_CLASSES: dict[str, int] = {"mnist": 0, "octmnist": 0, "organamnist": 3}

# Result names (results.json ``privacy.<name>``): the statistic over queries and the convention.
RESULT_NAMES: dict[tuple[str, str], str] = {
    (statistic, convention): f"empirical_epsilon_{statistic}_{convention}"
    for statistic in ("worst", "mean") for convention in ("paper_code", "with_d")
}
CONVENTIONS = ("paper_code", "with_d")

# Above this many fit points the dense eigen-solver (O(m^3) time) gives way to ARPACK (seeded, see fit_isomap).
_DENSE_SOLVER_MAX_POINTS = 2000
_TRANSFORM_BATCH = 1024  # sklearn's Isomap.transform holds [batch, fit_points] geodesic distances


# --- neighbouring sets and queries ------------------------------------------------------------------------------


def _labels_array(labels: Any) -> np.ndarray:
    array = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    if array.ndim != 1 or array.shape[0] == 0 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"labels must be a non-empty 1-d integer array, got shape {array.shape} ({array.dtype})")
    return array


@dataclass(frozen=True)
class NeighbouringSets:
    """Indices into the training split: ``victim`` (every image of the other classes plus the query) and
    ``ablated`` (``victim`` without the query), both ascending int64."""

    query_index: int
    query_class: int
    victim: np.ndarray
    ablated: np.ndarray


def neighbouring_sets(labels: Any, query_index: int) -> NeighbouringSets:
    """Paper 001's neighbouring data sets for one query (labels: int [N] of the training split)."""
    labels = _labels_array(labels)
    if isinstance(query_index, bool) or not isinstance(query_index, (int, np.integer)) or not 0 <= query_index < len(labels):
        raise ValueError(f"query_index must be an index in [0, {len(labels)}), got {query_index!r}")
    query_class = int(labels[query_index])
    others = np.flatnonzero(labels != query_class)
    if len(others) == 0:
        raise ValueError(f"every training image is of the query class {query_class}: the ablated set would be empty")
    victim = np.sort(np.append(others, int(query_index))).astype(np.int64)
    return NeighbouringSets(int(query_index), query_class, victim, others.astype(np.int64))


def _data_set_name(source: str) -> str:
    """'/data/octmnist_64.npz' -> 'octmnist' (MedMNIST file names, with the MedMNIST+ size suffix)."""
    stem = Path(str(source)).stem.lower()
    name, _, size = stem.rpartition("_")
    return name if name and size.isdigit() else stem


def query_class_of(labels: Any, source: str = "", query_class: int | None = None) -> tuple[int, str]:
    """(the query class, how it was chosen): ``query_class`` when given; else ``PAPER_QUERY_CLASSES`` of the
    data set named by ``source`` (an ImageSet's source, e.g. a MedMNIST ``.npz`` path); else the least
    frequent class (ties: the smallest index)."""
    labels = _labels_array(labels)
    classes, counts = np.unique(labels, return_counts=True)
    if query_class is not None:
        if int(query_class) not in classes.tolist():
            raise ValueError(f"query_class {query_class} has no training image (classes present: {classes.tolist()})")
        return int(query_class), "configured"
    name = _data_set_name(source)
    if name in PAPER_QUERY_CLASSES and PAPER_QUERY_CLASSES[name] in classes.tolist():
        return PAPER_QUERY_CLASSES[name], f"paper 001 default for {name}"
    return int(classes[np.argmin(counts)]), "least frequent class (no paper default for this data set)"


def minority_class_queries(labels: Any, n_queries: int, seed: int, *, query_class: int | None = None,
                           source: str = "") -> list[int]:
    """Indices (ascending) of ``n_queries`` distinct training images of the query class
    (:func:`query_class_of`), drawn with ``seed``; paper 001 §3.2 picks the query from a minority class: in
    the victim set its class holds the query alone."""
    labels = _labels_array(labels)
    chosen, _how = query_class_of(labels, source, query_class)
    members = np.flatnonzero(labels == chosen)
    if isinstance(n_queries, bool) or not isinstance(n_queries, (int, np.integer)) or not 1 <= n_queries <= len(members):
        raise ValueError(
            f"n_queries must be in [1, {len(members)}] (training images of the query class {chosen}), got {n_queries!r}"
        )
    return sorted(np.random.default_rng(seed).choice(members, size=int(n_queries), replace=False).tolist())


# --- estimator --------------------------------------------------------------------------------------------------


def log_density_ratio(query_embedding: Any, victim_embedded: Any, ablated_embedded: Any, k: int) -> dict[str, Any]:
    """Signed log density ratio victim / ablated at each query, in both conventions.

    query_embedding: [q, d] (or [d]); victim_embedded: [n_v, d]; ablated_embedded: [n_a, d]; 1 <= k <= min(n_v, n_a)
    returns: {"paper_code": [q] ln(r_a / r_v), "with_d": [q] ln p_v - ln p_a (kNN densities), "radius_victim",
              "radius_ablated", "log_density_victim", "log_density_ablated": [q], "n_victim", "n_ablated", "k", "dim"}
    """
    victim = _as_points(victim_embedded, "victim_embedded")
    ablated = _as_points(ablated_embedded, "ablated_embedded")
    queries = _as_points(query_embedding, "query_embedding")
    if ablated.shape[1] != victim.shape[1]:
        raise ValueError(
            f"victim_embedded and ablated_embedded must have the same dimension, got {victim.shape[1]} and "
            f"{ablated.shape[1]}"
        )
    radius_victim, radius_ablated = knn_radius(queries, victim, k), knn_radius(queries, ablated, k)
    log_victim = knn_log_density(queries, victim, k)
    log_ablated = knn_log_density(queries, ablated, k)
    return {
        "paper_code": np.log(radius_ablated / radius_victim),
        "with_d": log_victim - log_ablated,
        "radius_victim": radius_victim,
        "radius_ablated": radius_ablated,
        "log_density_victim": log_victim,
        "log_density_ablated": log_ablated,
        "n_victim": int(victim.shape[0]),
        "n_ablated": int(ablated.shape[0]),
        "k": int(k),
        "dim": int(victim.shape[1]),
    }


def worst_and_mean(values: Sequence[float]) -> dict[str, float]:
    """{"worst": max (eq. 1's sup over the queries tried), "mean"} of signed per-query estimates."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.shape[0] == 0 or not np.isfinite(array).all():
        raise ValueError(f"values must be a non-empty list of finite numbers, got {values!r:.80}")
    return {"worst": float(array.max()), "mean": float(array.mean())}


def empirical_epsilon_from_samples(query_embedding: Any, victim_embedded: Any, ablated_embedded: Any,
                                   k: int = DEFAULT_K) -> dict[str, Any]:
    """:func:`log_density_ratio` over the queries, summarised: {"worst_paper_code", "mean_paper_code",
    "worst_with_d", "mean_with_d", "per_query": {convention: [q]}, "k", "dim", "n_victim", "n_ablated"}."""
    ratio = log_density_ratio(query_embedding, victim_embedded, ablated_embedded, k)
    summary: dict[str, Any] = {}
    for convention in CONVENTIONS:
        for statistic, value in worst_and_mean(ratio[convention]).items():
            summary[f"{statistic}_{convention}"] = value
    summary["per_query"] = {convention: ratio[convention].tolist() for convention in CONVENTIONS}
    summary.update({key: ratio[key] for key in ("k", "dim", "n_victim", "n_ablated")})
    return summary


# --- the Isomap fit set -----------------------------------------------------------------------------------------


def isomap_fit_indices(labels: Any, per_class: int, seed: int) -> np.ndarray:
    """A seeded subsample stratified by class: min(per_class, class size) indices of every class, ascending."""
    labels = _labels_array(labels)
    if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise ValueError(f"per_class must be a positive integer, got {per_class!r}")
    rng = np.random.default_rng(seed)
    picked = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        picked.append(members if len(members) <= per_class else rng.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(picked)).astype(np.int64)


def noisy_copies(points: np.ndarray, sigmas: Sequence[float], seed: int) -> np.ndarray:
    """``points`` [m, D] in [0, 1] followed by one copy per sigma with N(0, sigma^2) noise, clamped to [0, 1]
    (the authors' augmentation, so that the embedding also covers images degraded as DP-SGD ones are):
    [m * (1 + len(sigmas)), D]."""
    if any(not sigma > 0 for sigma in sigmas):
        raise ValueError(f"noise sigmas must be > 0, got {list(sigmas)}")
    if sigmas and (points.min() < 0 or points.max() > 1):
        raise ValueError(
            f"noisy copies are clamped to [0, 1] and need images in [0, 1], got [{points.min():.4g}, "
            f"{points.max():.4g}]; pass isomap_noise_sigmas=() for features"
        )
    rng = np.random.default_rng(seed)
    copies = [np.clip(points + rng.normal(0.0, sigma, size=points.shape), 0.0, 1.0) for sigma in sigmas]
    return np.concatenate([points, *copies]) if copies else points


def fit_isomap(points: np.ndarray, *, n_components: int = DEFAULT_N_COMPONENTS,
               n_neighbors: int = DEFAULT_ISOMAP_NEIGHBORS, seed: int = 0) -> tuple[Any, dict[str, Any]]:
    """(Isomap fitted on ``points`` [m, D], its cost {"fit_points", "fit_seconds", "eigen_solver",
    "geodesic_matrix_bytes"}). Time O(m^2 log m) for the shortest paths plus O(m^3) (dense solver, m <= 2000)
    or a few O(m^2) ARPACK iterations; memory O(m^2): m is the capped fit set, never the data set."""
    from sklearn.manifold import Isomap  # imported here: sklearn.manifold takes seconds to import

    m, width = points.shape
    if not 1 <= n_components <= width or not 1 <= n_neighbors < m:
        raise ValueError(
            f"n_components must be in [1, {width}] and n_neighbors in [1, {m - 1}] for {m} Isomap fit points, "
            f"got {n_components} and {n_neighbors}"
        )
    solver = "dense" if m <= _DENSE_SOLVER_MAX_POINTS else "arpack"
    started = time.perf_counter()
    isomap = Isomap(n_components=n_components, n_neighbors=n_neighbors, eigen_solver=solver)
    if solver == "arpack":
        # sklearn's KernelPCA draws ARPACK's start vector from numpy's global RNG (Isomap has no random_state):
        # seed it for a reproducible embedding and give the caller's state back
        state = np.random.get_state()
        np.random.seed(seed)
        try:
            isomap.fit(points)
        finally:
            np.random.set_state(state)
    else:
        isomap.fit(points)
    cost = {"fit_points": int(m), "fit_seconds": time.perf_counter() - started, "eigen_solver": solver,
            "geodesic_matrix_bytes": int(m) * int(m) * 8}
    return isomap, cost


def _embed(isomap: Any, points: np.ndarray) -> np.ndarray:
    return np.concatenate([isomap.transform(points[start:start + _TRANSFORM_BATCH])
                           for start in range(0, len(points), _TRANSFORM_BATCH)])


def _flatten(value: Any, name: str) -> np.ndarray:
    value = image_tensor(value) if isinstance(value, StoredImages) else value
    array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    if array.ndim < 2 or array.shape[0] == 0:
        raise ValueError(f"{name} must be images [N,C,H,W] / [N,H,W] or features [N,D] with N >= 1, got {array.shape}")
    array = array.reshape(array.shape[0], -1).astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf")
    return array


# --- the experiment ---------------------------------------------------------------------------------------------


def empirical_epsilon(
    real_train: Any,
    real_labels: Any,
    queries: Any,
    victim_synthetic: Sequence[Any],
    ablated_synthetic: Sequence[Any],
    *,
    k: int = DEFAULT_K,
    n_components: int = DEFAULT_N_COMPONENTS,
    isomap_neighbors: int = DEFAULT_ISOMAP_NEIGHBORS,
    isomap_per_class: int = DEFAULT_ISOMAP_PER_CLASS,
    isomap_noise_sigmas: Sequence[float] = DEFAULT_ISOMAP_NOISE_SIGMAS,
    seed: int = 0,
    trial_labels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Empirical epsilon over t trials (a trial: one query, its victim and its ablated synthetic set).

    real_train: the real training split (images [n,C,H,W] in [0, 1], a tensor or StoredImages, or features
        [n,D] with isomap_noise_sigmas=()); real_labels: int [n]. The Isomap is fitted on
        :func:`isomap_fit_indices` (isomap_per_class, seed) of it plus :func:`noisy_copies` (seed).
    queries: [t, ...] the query of each trial (same layout as real_train)
    victim_synthetic, ablated_synthetic: t sets each ([m_i, ...])
    returns: {"empirical_epsilon": {"worst_paper_code", "mean_paper_code", "worst_with_d", "mean_with_d"
              (over the trials), "worst_trial", "n_trials", "k", "dim", "isomap": fit set and cost, ...},
              "trials": [per-trial dicts], "embedding": 2-d points for the Isomap scatter ("real_train": the
              real images of the fit set, "queries", and the first trial's "victim" and "ablated")}
    """
    query_points = _flatten(queries, "queries")
    t = query_points.shape[0]
    if len(victim_synthetic) != t or len(ablated_synthetic) != t:
        raise ValueError(
            f"victim_synthetic and ablated_synthetic need one set per query ({t}), got {len(victim_synthetic)} "
            f"and {len(ablated_synthetic)}"
        )
    if trial_labels is not None and len(trial_labels) != t:
        raise ValueError(f"trial_labels needs {t} entries, got {len(trial_labels)}")
    labels = _labels_array(real_labels)
    if len(labels) != len(real_train):
        raise ValueError(f"real_labels has {len(labels)} entries for {len(real_train)} real training samples")
    fit_index = isomap_fit_indices(labels, isomap_per_class, seed)
    real_points = _flatten(real_train[torch.as_tensor(fit_index)] if isinstance(real_train, (torch.Tensor, StoredImages))
                           else np.asarray(real_train)[fit_index], "real_train")
    isomap, cost = fit_isomap(noisy_copies(real_points, tuple(isomap_noise_sigmas), seed),
                              n_components=n_components, n_neighbors=isomap_neighbors, seed=seed)
    cost.update({"real_images": int(len(fit_index)), "per_class_cap": int(isomap_per_class),
                 "noise_sigmas": [float(s) for s in isomap_noise_sigmas], "n_neighbors": int(isomap_neighbors),
                 "n_components": int(n_components), "subsample_seed": int(seed)})
    real_dim = real_points.shape[1]
    if query_points.shape[1] != real_dim:
        raise ValueError(f"queries have {query_points.shape[1]} values per sample but real_train has {real_dim}")
    embedded_queries = _embed(isomap, query_points)
    trials = []
    first_sets: tuple[np.ndarray, np.ndarray] | None = None
    for i in range(t):
        victim = _flatten(victim_synthetic[i], f"victim_synthetic[{i}]")
        ablated = _flatten(ablated_synthetic[i], f"ablated_synthetic[{i}]")
        for name, points in ((f"victim_synthetic[{i}]", victim), (f"ablated_synthetic[{i}]", ablated)):
            if points.shape[1] != real_dim:
                raise ValueError(f"{name} has {points.shape[1]} values per sample but real_train has {real_dim}")
        victim_e, ablated_e = _embed(isomap, victim), _embed(isomap, ablated)
        if first_sets is None:
            first_sets = (victim_e, ablated_e)
        ratio = log_density_ratio(embedded_queries[i], victim_e, ablated_e, k)
        trials.append({
            "label": trial_labels[i] if trial_labels is not None else str(i),
            **{convention: float(ratio[convention][0]) for convention in CONVENTIONS},
            **{key: float(ratio[key][0]) for key in ("radius_victim", "radius_ablated", "log_density_victim",
                                                      "log_density_ablated")},
            "n_victim": ratio["n_victim"], "n_ablated": ratio["n_ablated"],
        })
    summary: dict[str, Any] = {}
    for convention in CONVENTIONS:
        values = [trial[convention] for trial in trials]
        for statistic, value in worst_and_mean(values).items():
            summary[f"{statistic}_{convention}"] = value
        summary[f"per_trial_{convention}"] = values
    summary.update({
        "worst_trial": trials[int(np.argmax([trial["paper_code"] for trial in trials]))]["label"],
        "n_trials": int(t), "k": int(k), "dim": int(n_components), "isomap": cost,
        "estimator": "signed ln of the kNN density ratio victim/ablated at the query in an Isomap of real training "
                     "images: paper_code = ln(r_a/r_v) (the authors' code, no d), with_d = ln p_v - ln p_a "
                     "= d ln(r_a/r_v) + ln(n_a/n_v); worst = max over the trials, mean beside it",
    })
    return {
        "empirical_epsilon": summary,
        "trials": trials,
        "embedding": {
            "real_train": isomap.embedding_[: len(real_points)].tolist(),  # the originals come first
            "queries": embedded_queries.tolist(),
            "victim": first_sets[0].tolist(),
            "ablated": first_sets[1].tolist(),
        },
    }


def _check_experiment_arguments(train_set: Any, query_indices: Sequence[int], samples_per_class: int) -> None:
    from medsyn.data.image_set import ImageSet

    if not isinstance(train_set, ImageSet):
        raise ValueError(f"train_set must be an ImageSet, got {type(train_set).__name__}")
    n = len(train_set)
    if (not query_indices or any(not 0 <= int(i) < n for i in query_indices)
            or len(set(query_indices)) != len(query_indices)):
        raise ValueError(f"query_indices must be distinct indices in [0, {n}), got {list(query_indices)}")
    if isinstance(samples_per_class, bool) or samples_per_class < 1:
        raise ValueError(f"samples_per_class must be >= 1, got {samples_per_class}")


def train_neighbouring_generators(
    train_set: Any,
    train_fn: Callable[[Any, int, str], Any],
    *,
    query_indices: Sequence[int],
    seed: int,
    samples_per_class: int = DEFAULT_SAMPLES_PER_CLASS,
    sampling_seed: int | None = None,
) -> list[dict[str, Any]]:
    """One victim per query and one ablated generator per query class (the ablated set of every query of a
    class is the same), each trained with ``seed`` by ``train_fn(neighbouring ImageSet, seed, name)`` (name:
    ``victim_q<index>`` or ``ablated_c<class>``), each sampling ``samples_per_class`` images of every class with
    ``sampling_seed`` (default ``seed``).

    returns: per query {"query_index", "query_class", "query": image [C,H,W], "victim": [m,C,H,W],
              "ablated": [m,C,H,W], "victim_indices", "ablated_indices": index lists into train_set}
    """
    _check_experiment_arguments(train_set, query_indices, samples_per_class)
    if not callable(train_fn):
        raise ValueError(f"train_fn must be callable, got {type(train_fn).__name__}")
    sampling_seed = int(seed if sampling_seed is None else sampling_seed)
    labels = torch.arange(train_set.num_classes).repeat_interleave(samples_per_class)
    ablated_samples: dict[int, Any] = {}
    trials = []
    for index in query_indices:
        sets = neighbouring_sets(train_set.labels, int(index))
        if sets.query_class not in ablated_samples:
            neighbour = dataclasses.replace(train_set.subset(sets.ablated),
                                            source=f"{train_set.source} without class {sets.query_class}")
            ablated = train_fn(neighbour, int(seed), f"ablated_c{sets.query_class}")
            ablated_samples[sets.query_class] = ablated.sample(labels, seed=sampling_seed)
        neighbour = dataclasses.replace(
            train_set.subset(sets.victim),
            source=f"{train_set.source} without class {sets.query_class} except sample {sets.query_index}")
        victim = train_fn(neighbour, int(seed), f"victim_q{sets.query_index}")
        trials.append({
            "query_index": sets.query_index, "query_class": sets.query_class,
            "query": train_set.images[sets.query_index],
            "victim": victim.sample(labels, seed=sampling_seed), "ablated": ablated_samples[sets.query_class],
            "victim_indices": sets.victim.tolist(), "ablated_indices": sets.ablated.tolist(),
        })
    return trials


def run_empirical_epsilon_experiment(
    train_set: Any,
    train_fn: Callable[[Any, int, str], Any],
    *,
    query_indices: Sequence[int],
    seeds: Sequence[int],
    samples_per_class: int = DEFAULT_SAMPLES_PER_CLASS,
    sampling_seeds: Sequence[int] | None = None,
    k: int = DEFAULT_K,
    n_components: int = DEFAULT_N_COMPONENTS,
    isomap_neighbors: int = DEFAULT_ISOMAP_NEIGHBORS,
    isomap_per_class: int = DEFAULT_ISOMAP_PER_CLASS,
    isomap_noise_sigmas: Sequence[float] = DEFAULT_ISOMAP_NOISE_SIGMAS,
) -> dict[str, Any]:
    """:func:`train_neighbouring_generators` per seed, then :func:`empirical_epsilon` over queries x seeds
    (the Isomap fit set drawn with the first seed).

    train_set: ImageSet, the real training split; train_fn(train_set, seed, name) -> a generator with
    ``sample(labels, seed) -> images [N,C,H,W]``; sampling_seeds: one per seed (default: ``seeds``).
    """
    _check_experiment_arguments(train_set, query_indices, samples_per_class)
    if not seeds:
        raise ValueError("seeds must be non-empty")
    sampling_seeds = list(seeds) if sampling_seeds is None else list(sampling_seeds)
    if len(sampling_seeds) != len(seeds):
        raise ValueError(f"sampling_seeds must have one seed per seed, got {sampling_seeds} for {list(seeds)}")
    trials, names = [], []
    for seed, sampling_seed in zip(seeds, sampling_seeds):
        for trial in train_neighbouring_generators(train_set, train_fn, query_indices=query_indices, seed=int(seed),
                                                   samples_per_class=samples_per_class, sampling_seed=int(sampling_seed)):
            trials.append(trial)
            names.append(f"query={trial['query_index']},seed={int(seed)}")
    result = empirical_epsilon(
        train_set.images, train_set.labels, torch.stack([trial["query"] for trial in trials]),
        [trial["victim"] for trial in trials], [trial["ablated"] for trial in trials],
        k=k, n_components=n_components, isomap_neighbors=isomap_neighbors, isomap_per_class=isomap_per_class,
        isomap_noise_sigmas=isomap_noise_sigmas, seed=int(seeds[0]), trial_labels=names,
    )
    result["empirical_epsilon"].update({
        "query_indices": [int(i) for i in query_indices],
        "query_classes": sorted({trial["query_class"] for trial in trials}),
        "seeds": [int(s) for s in seeds], "samples_per_class": int(samples_per_class),
        "victim_sizes": [len(trial["victim_indices"]) for trial in trials],
        "ablated_sizes": [len(trial["ablated_indices"]) for trial in trials],
    })
    return result
