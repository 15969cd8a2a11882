"""Distance to closest record: reference = training members, ECDF KS/area vs scipy, brute-force distances."""

import json
import sys
import types

import numpy as np
import pytest
import scipy.stats
import torch

from medsyn.metrics.features.registry import (
    FeatureExtractorSpec,
    register_feature_extractor,
    unregister_feature_extractor,
)


def _install_fallbacks_if_missing():
    """H2's nearest_neighbors/ecdf_distance may land after this file: brute-force float64 stand-ins
    (test-only) keep these tests about DCR itself."""
    try:
        from medsyn.metrics import ecdf_distance, nearest_neighbors
    except ImportError:
        def nearest_neighbors(queries, reference):
            q = torch.as_tensor(queries, dtype=torch.float64)
            r = torch.as_tensor(reference, dtype=torch.float64)
            d = torch.cdist(q, r)
            distances, indices = d.min(dim=1)
            return distances, indices

        def ecdf_distance(a, b):
            a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
            return scipy.stats.ks_2samp(a, b).statistic, scipy.stats.wasserstein_distance(a, b)

        for name, fn in (("neighbors", nearest_neighbors), ("ecdf", ecdf_distance)):
            module = types.ModuleType(f"medsyn.metrics.{name}")
            setattr(module, fn.__name__, fn)
            sys.modules[module.__name__] = module


_install_fallbacks_if_missing()

from medsyn.metrics.privacy import distance_to_closest_record  # noqa: E402


@pytest.fixture
def split():
    rng = np.random.default_rng(0)
    train = rng.random((20, 1, 8, 8)).astype(np.float32)
    holdout = rng.random((10, 1, 8, 8)).astype(np.float32)
    synthetic = rng.random((15, 1, 8, 8)).astype(np.float32)
    return synthetic, train, holdout


def brute_force_dcr(queries, reference):
    q = queries.reshape(len(queries), -1).astype(np.float64)
    r = reference.reshape(len(reference), -1).astype(np.float64)
    d = np.sqrt(((q[:, None, :] - r[None, :, :]) ** 2).sum(-1))
    return d.min(1), d.argmin(1)


def test_distances_and_ecdf_statistics_match_oracles(split):
    synthetic, train, holdout = split
    result = distance_to_closest_record(synthetic, train, holdout)
    syn_d, syn_i = brute_force_dcr(synthetic, train)
    hold_d, _ = brute_force_dcr(holdout, train)
    np.testing.assert_allclose(result["synthetic_distances"], syn_d, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(result["holdout_distances"], hold_d, rtol=1e-5, atol=1e-5)
    assert result["synthetic_nearest_train_index"] == syn_i.tolist()
    assert result["dcr_ks"]["value"] == pytest.approx(scipy.stats.ks_2samp(syn_d, hold_d).statistic, abs=1e-6)
    assert result["dcr_area"]["value"] == pytest.approx(scipy.stats.wasserstein_distance(syn_d, hold_d), rel=1e-4)
    ecdf = result["ecdf"]["synthetic"]
    assert ecdf["x"] == sorted(ecdf["x"]) and ecdf["y"][-1] == 1.0 and len(ecdf["x"]) == 15
    assert result["dcr_ks"]["n_train_members"] == 20
    json.dumps(result, allow_nan=False)  # the report writes it as is


def test_reference_is_the_training_members(split):
    synthetic, train, holdout = split
    synthetic = synthetic.copy()
    synthetic[0] = train[4]  # memorised training member -> distance 0
    synthetic[1] = holdout[2]  # looks like a held-out image: NOT a training member
    result = distance_to_closest_record(synthetic, train, holdout)
    assert result["synthetic_distances"][0] == pytest.approx(0.0, abs=1e-3)
    assert result["synthetic_nearest_train_index"][0] == 4
    assert result["synthetic_distances"][1] > 0.5  # far from every training member
    assert result["synthetic_copies"] == 1
    assert result["holdout_in_train"] == 0
    # the same holdout image becomes distance 0 only once it is also a training member
    train_with_it = np.concatenate([train, holdout[2:3]])
    again = distance_to_closest_record(synthetic, train_with_it, holdout)
    assert again["synthetic_distances"][1] == pytest.approx(0.0, abs=1e-3)
    assert again["holdout_in_train"] == 1


def test_memorising_generator_has_large_ks(split):
    _, train, holdout = split
    rng = np.random.default_rng(1)
    copies = np.clip(train[rng.integers(0, 20, 15)] + rng.normal(0, 0.01, (15, 1, 8, 8)), 0, 1).astype(np.float32)
    fresh = np.random.default_rng(2).random((15, 1, 8, 8)).astype(np.float32)
    memorised = distance_to_closest_record(copies, train, holdout)
    generalising = distance_to_closest_record(fresh, train, holdout)
    assert memorised["dcr_ks"]["value"] == pytest.approx(1.0)  # every copy is closer than every holdout image
    assert generalising["dcr_ks"]["value"] < 0.6
    assert memorised["dcr_area"]["normalised"] > generalising["dcr_area"]["normalised"]


def test_feature_space_inputs_and_extractor_space(split):
    synthetic, train, holdout = split
    features = distance_to_closest_record(
        synthetic.reshape(15, -1), train.reshape(20, -1), holdout.reshape(10, -1), space="features"
    )
    pixels = distance_to_closest_record(synthetic, train, holdout, space="pixel")
    np.testing.assert_allclose(features["synthetic_distances"], pixels["synthetic_distances"], rtol=1e-6)

    class RowMeans(torch.nn.Module):
        def forward(self, x):
            return x.mean(dim=(1, 3))  # [N, H] per-row means

    register_feature_extractor(FeatureExtractorSpec("toy_rows", RowMeans, None, (0.0,), (1.0,), 8, 1), overwrite=True)
    try:
        result = distance_to_closest_record(synthetic, train, holdout, space="toy_rows")
        expected, _ = brute_force_dcr(synthetic.mean(axis=(1, 3)), train.mean(axis=(1, 3)))
        np.testing.assert_allclose(result["synthetic_distances"], expected, rtol=1e-5, atol=1e-6)
        assert result["dcr_ks"]["space"] == "toy_rows"
    finally:
        unregister_feature_extractor("toy_rows")


def test_bad_inputs(split):
    synthetic, train, holdout = split
    with pytest.raises(ValueError, match="holdout and train_members"):
        distance_to_closest_record(synthetic, train, holdout[:, :, :4])
    with pytest.raises(ValueError, match="synthetic is empty"):
        distance_to_closest_record(synthetic[:0], train, holdout)
    with pytest.raises(ValueError, match="extractor_name"):
        distance_to_closest_record(synthetic, train, holdout, space="no_such_space")
    with pytest.raises(ValueError, match="feature dimension"):
        distance_to_closest_record(np.ones((3, 4)), np.ones((3, 5)), np.ones((3, 5)), space="features")


def test_feature_space_at_any_scale_gives_the_scaled_distances_and_the_same_statistics(split):
    # issue 11 item 7: float64 features near 1e39 (inf in float32) and float32 features at 2^-100
    synthetic, train, holdout = (x.reshape(len(x), -1) for x in split)
    unit = distance_to_closest_record(synthetic, train, holdout, space="features")
    for scale, dtype in ((2.0**130, np.float64), (2.0**-100, np.float32)):
        scaled = distance_to_closest_record(
            *(x.astype(dtype) * dtype(scale) for x in (synthetic, train, holdout)), space="features"
        )
        assert scaled["synthetic_distances"] == [d * scale for d in unit["synthetic_distances"]]
        assert scaled["synthetic_nearest_train_index"] == unit["synthetic_nearest_train_index"]
        assert scaled["dcr_ks"]["value"] == unit["dcr_ks"]["value"]
