"""FeatureScale: statistics of the real training features only; fidelity FID/KID on that scale."""

import numpy as np
import pytest
import torch

from medsyn.evaluation.fidelity_suite import fidelity_scores
from medsyn.metrics.feature_standardisation import FeatureScale


def test_uses_the_reference_statistics_only():
    rng = np.random.default_rng(0)
    train = rng.normal([5.0, -3.0, 0.0], [2.0, 0.5, 10.0], size=(500, 3))
    other = rng.normal(100.0, 50.0, size=(40, 3))  # a wildly different set must not move the scale
    scale = FeatureScale.of(train)
    np.testing.assert_allclose(scale.mean.numpy(), train.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(scale.std.numpy(), train.std(axis=0), rtol=1e-12)
    np.testing.assert_allclose(scale.apply(other).numpy(), (other - train.mean(0)) / train.std(0), rtol=1e-12)
    z = scale.apply(train).numpy()
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(0), 1.0, rtol=1e-12)


def test_constant_feature_is_only_centred_and_bad_width_is_refused():
    scale = FeatureScale.of(np.array([[1.0, 2.0], [3.0, 2.0]]))
    assert scale.std.tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="3 features per row but the reference had 2"):
        scale.apply(np.zeros((2, 3)))


def test_standardised_fid_kid_do_not_depend_on_the_feature_scale():
    rng = np.random.default_rng(1)
    real = torch.from_numpy(rng.normal(size=(200, 4)))
    synthetic = torch.from_numpy(rng.normal(0.3, 1.0, size=(200, 4)))
    kid = {"subsets": 10, "subset_size": 100}
    base = fidelity_scores(real, synthetic, metrics=["fid", "kid"], k=3, kid=kid, seed=0, standardise=True)
    scaled = fidelity_scores(real * 1000 + 7, synthetic * 1000 + 7, metrics=["fid", "kid"], k=3, kid=kid,
                             seed=0, standardise=True)
    assert scaled["fid"] == pytest.approx(base["fid"], rel=1e-9)
    assert scaled["kid"] == pytest.approx(base["kid"], rel=1e-9, abs=1e-12)
    raw = fidelity_scores(real, synthetic, metrics=["fid"], k=3, kid=None, seed=0)
    raw_scaled = fidelity_scores(real * 1000 + 7, synthetic * 1000 + 7, metrics=["fid"], k=3, kid=None, seed=0)
    assert raw_scaled["fid"] == pytest.approx(raw["fid"] * 1e6, rel=1e-6)  # unstandardised: scale^2
