"""Empirical epsilon (paper 001 §3.2, after Galende et al. 2025): how much one training sample changes the
generator's density at that sample.

    epsilon ~ | ln( p(x_q | theta_victim) / p(x_q | theta_ablated) ) |

The victim generator is trained on D, the ablated one on D minus the query x_q (a sample of a minority
class, where memorisation is most likely). Each generates a large class-balanced synthetic set. An
Isomap embedding is fitted on the REAL TRAINING images only (never on synthetic or test data), both
synthetic sets and the query are embedded, and the density of each set at the query is estimated by
kNN including the dimension factor (see ``knn_density``). Several queries and seeds give mean and max.

Training generators is the workflow's job: :func:`run_empirical_epsilon_experiment` takes a
``train_fn(train_set, seed) -> generator`` callback; :func:`empirical_epsilon` works on already sampled
sets; :func:`empirical_epsilon_from_samples` is the pure computational core on embedded points.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from medsyn.data.stored_images import StoredImages, image_tensor
from medsyn.metrics.privacy.knn_density import _as_points, knn_log_density

__all__ = [
    "empirical_epsilon_from_samples",
    "empirical_epsilon",
    "fit_real_embedding",
    "minority_class_queries",
    "run_empirical_epsilon_experiment",
    "DEFAULT_K",
    "DEFAULT_N_COMPONENTS",
    "DEFAULT_ISOMAP_NEIGHBORS",
]

# Paper 001 §4.1: Isomap preserved distance rankings best, kNN gave ratios stable across k. The paper
# shows 2-d Isomap projections (Figs. 5, 8); k and the Isomap graph size are not stated: our choices.
DEFAULT_N_COMPONENTS = 2
DEFAULT_ISOMAP_NEIGHBORS = 5
DEFAULT_K = 5


def empirical_epsilon_from_samples(
    query_embedding: Any, victim_embedded: Any, ablated_embedded: Any, k: int = DEFAULT_K, dim: int | None = None
) -> dict[str, Any]:
    """epsilon = |log p_victim(x_q) - log p_ablated(x_q)| with kNN densities.

    query_embedding: [q, d] (or [d]); victim_embedded: [n_v, d]; ablated_embedded: [n_a, d]
    k: neighbours (1 <= k <= min(n_v, n_a)); dim: d (defaults to the points' dimension)
    returns: {"value": mean epsilon over queries, "max", "per_query": [q], "log_density_victim": [q],
              "log_density_ablated": [q], "k", "dim"}
    """
    victim = _as_points(victim_embedded, "victim_embedded")
    ablated = _as_points(ablated_embedded, "ablated_embedded")
    queries = _as_points(query_embedding, "query_embedding")
    d = victim.shape[1] if dim is None else dim
    if ablated.shape[1] != victim.shape[1]:
        raise ValueError(
            f"victim_embedded and ablated_embedded must have the same dimension, got {victim.shape[1]} and "
            f"{ablated.shape[1]}"
        )
    log_victim = knn_log_density(queries, victim, k, d)
    log_ablated = knn_log_density(queries, ablated, k, d)
    per_query = np.abs(log_victim - log_ablated)
    return {
        "value": float(per_query.mean()),
        "max": float(per_query.max()),
        "per_query": per_query.tolist(),
        "log_density_victim": log_victim.tolist(),
        "log_density_ablated": log_ablated.tolist(),
        "k": int(k),
        "dim": int(d),
    }


def _flatten(value: Any, name: str) -> np.ndarray:
    value = image_tensor(value) if isinstance(value, StoredImages) else value  # the Isomap needs every point
    array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    if array.ndim < 2 or array.shape[0] == 0:
        raise ValueError(f"{name} must be images [N,C,H,W] / [N,H,W] or features [N,D] with N >= 1, got {array.shape}")
    array = array.reshape(array.shape[0], -1).astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf")
    return array


def fit_real_embedding(
    real_train: Any, *, n_components: int = DEFAULT_N_COMPONENTS, n_neighbors: int = DEFAULT_ISOMAP_NEIGHBORS
) -> Any:
    """Isomap fitted on the real training set only (images or features, flattened)."""
    from sklearn.manifold import Isomap  # imported here: sklearn.manifold takes seconds to import

    points = _flatten(real_train, "real_train")
    if not 1 <= n_components < points.shape[1] + 1 or not 1 <= n_neighbors < points.shape[0]:
        raise ValueError(
            f"n_components must be in [1, {points.shape[1]}] and n_neighbors in [1, {points.shape[0] - 1}] "
            f"for {points.shape[0]} real training samples, got {n_components} and {n_neighbors}"
        )
    # dense eigen-solver: deterministic (ARPACK starts from a random vector), and the real training set of
    # a data-scarce study is small enough for it
    return Isomap(n_components=n_components, n_neighbors=n_neighbors, eigen_solver="dense").fit(points)


def empirical_epsilon(
    real_train: Any,
    queries: Any,
    victim_synthetic: Sequence[Any],
    ablated_synthetic: Sequence[Any],
    *,
    k: int = DEFAULT_K,
    n_components: int = DEFAULT_N_COMPONENTS,
    isomap_neighbors: int = DEFAULT_ISOMAP_NEIGHBORS,
    trial_labels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Empirical epsilon over t trials (query x seed).

    real_train: the real training set D (images [n,C,H,W] or features [n,D]); the Isomap is fitted on it
    queries: [t, ...] the query sample of each trial (same layout as real_train)
    victim_synthetic, ablated_synthetic: t sets each ([m_i, ...]): trial i's victim / ablated samples
    k, n_components, isomap_neighbors: kNN and embedding settings
    returns: {"empirical_epsilon": {"value" (mean), "max", "std", "n_trials", "per_trial", ...},
              "trials": [per-trial dicts], "embedding": {"real_train", "queries", "victim", "ablated"}
              (2-d points of the first trial, for the Isomap scatter)}
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
    embedding = fit_real_embedding(real_train, n_components=n_components, n_neighbors=isomap_neighbors)
    real_dim = embedding.n_features_in_
    if query_points.shape[1] != real_dim:
        raise ValueError(f"queries have {query_points.shape[1]} values per sample but real_train has {real_dim}")
    embedded_queries = embedding.transform(query_points)
    trials = []
    first_sets: tuple[np.ndarray, np.ndarray] | None = None
    for i in range(t):
        victim = _flatten(victim_synthetic[i], f"victim_synthetic[{i}]")
        ablated = _flatten(ablated_synthetic[i], f"ablated_synthetic[{i}]")
        for name, points in ((f"victim_synthetic[{i}]", victim), (f"ablated_synthetic[{i}]", ablated)):
            if points.shape[1] != real_dim:
                raise ValueError(f"{name} has {points.shape[1]} values per sample but real_train has {real_dim}")
        victim_e, ablated_e = embedding.transform(victim), embedding.transform(ablated)
        if first_sets is None:
            first_sets = (victim_e, ablated_e)
        trial = empirical_epsilon_from_samples(embedded_queries[i], victim_e, ablated_e, k=k, dim=n_components)
        trial["label"] = trial_labels[i] if trial_labels is not None else str(i)
        trial["n_victim"], trial["n_ablated"] = int(victim.shape[0]), int(ablated.shape[0])
        trials.append(trial)
    per_trial = np.array([trial["value"] for trial in trials])
    return {
        "empirical_epsilon": {
            "value": float(per_trial.mean()),
            "max": float(per_trial.max()),
            "std": float(per_trial.std()),
            "n_trials": int(t),
            "per_trial": per_trial.tolist(),
            "k": int(k),
            "dim": int(n_components),
            "isomap_neighbors": int(isomap_neighbors),
            "estimator": "kNN density k/(n V_d r_k^d) in an Isomap embedding fitted on real training data",
        },
        "trials": trials,
        "embedding": {
            "real_train": embedding.embedding_.tolist(),
            "queries": embedded_queries.tolist(),
            "victim": first_sets[0].tolist(),
            "ablated": first_sets[1].tolist(),
        },
    }


def minority_class_queries(labels: Any, n_queries: int, seed: int) -> list[int]:
    """Indices of ``n_queries`` distinct training samples of the least frequent class (ties -> smallest
    class index), drawn with ``seed``; the paper's choice of query (001 §3.2: a minority class)."""
    labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    if labels.ndim != 1 or labels.shape[0] == 0:
        raise ValueError(f"labels must be a non-empty 1-d array, got shape {labels.shape}")
    classes, counts = np.unique(labels, return_counts=True)
    minority = classes[np.argmin(counts)]
    members = np.flatnonzero(labels == minority)
    if isinstance(n_queries, bool) or not isinstance(n_queries, (int, np.integer)) or not 1 <= n_queries <= len(members):
        raise ValueError(
            f"n_queries must be in [1, {len(members)}] (samples of the minority class {minority}), got {n_queries!r}"
        )
    return sorted(np.random.default_rng(seed).choice(members, size=int(n_queries), replace=False).tolist())


def run_empirical_epsilon_experiment(
    train_set: Any,
    train_fn: Callable[[Any, int], Any],
    *,
    query_indices: Sequence[int],
    seeds: Sequence[int],
    samples_per_class: int,
    sampling_seeds: Sequence[int] | None = None,
    k: int = DEFAULT_K,
    n_components: int = DEFAULT_N_COMPONENTS,
    isomap_neighbors: int = DEFAULT_ISOMAP_NEIGHBORS,
) -> dict[str, Any]:
    """Train victim/ablated generators and compute empirical epsilon over queries x seeds.

    train_set: ImageSet D (the real training set)
    train_fn(train_set, seed) -> a generator with ``sample(labels, seed) -> images [N,C,H,W]``
    query_indices: indices into train_set of the query samples (see :func:`minority_class_queries`)
    seeds: one victim per seed; one ablated generator per (query, seed), trained on D minus the query
    samples_per_class: size of each class-balanced synthetic set is samples_per_class * num_classes
    sampling_seeds: the seed each seed's victim and ablated generators sample with (default: ``seeds``)
    """
    from medsyn.data.image_set import ImageSet

    if not isinstance(train_set, ImageSet):
        raise ValueError(f"train_set must be an ImageSet, got {type(train_set).__name__}")
    if not callable(train_fn):
        raise ValueError(f"train_fn must be callable, got {type(train_fn).__name__}")
    if not query_indices or not seeds:
        raise ValueError("query_indices and seeds must be non-empty")
    n = len(train_set)
    if any(not 0 <= int(i) < n for i in query_indices) or len(set(query_indices)) != len(query_indices):
        raise ValueError(f"query_indices must be distinct indices in [0, {n}), got {list(query_indices)}")
    if samples_per_class < 1:
        raise ValueError(f"samples_per_class must be >= 1, got {samples_per_class}")
    sampling_seeds = list(seeds) if sampling_seeds is None else list(sampling_seeds)
    if len(sampling_seeds) != len(seeds):
        raise ValueError(f"sampling_seeds must have one seed per seed, got {sampling_seeds} for {list(seeds)}")
    labels = torch.arange(train_set.num_classes).repeat_interleave(samples_per_class)

    queries, victims, ablateds, names = [], [], [], []
    for seed, sampling_seed in zip(seeds, sampling_seeds):
        victim = train_fn(train_set, int(seed))
        victim_samples = victim.sample(labels, seed=int(sampling_seed))
        for index in query_indices:
            keep = torch.ones(n, dtype=torch.bool)
            keep[int(index)] = False
            neighbour = ImageSet(train_set.images[keep], train_set.labels[keep], train_set.class_names,
                                 f"{train_set.source} minus sample {int(index)}")
            ablated = train_fn(neighbour, int(seed))
            queries.append(train_set.images[int(index)])
            victims.append(victim_samples)
            ablateds.append(ablated.sample(labels, seed=int(sampling_seed)))
            names.append(f"query={int(index)},seed={int(seed)}")
    result = empirical_epsilon(
        train_set.images, torch.stack(queries), victims, ablateds,
        k=k, n_components=n_components, isomap_neighbors=isomap_neighbors, trial_labels=names,
    )
    result["empirical_epsilon"].update(
        {"query_indices": [int(i) for i in query_indices], "seeds": [int(s) for s in seeds],
         "samples_per_class": int(samples_per_class)}
    )
    return result
