"""SSIM-max privacy protocol (paper 000 §4.1.6) against a brute-force skimage oracle."""

import json

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

import medsyn.metrics.ssim as ssim_module
from medsyn.metrics.privacy import ssim_max_privacy


def brute_force_max_ssim(synthetic, real):
    values, indices = [], []
    for s in synthetic:
        scores = [structural_similarity(s[0], r[0], data_range=1.0) for r in real]
        values.append(max(scores))
        indices.append(int(np.argmax(scores)))
    return np.array(values), np.array(indices)


@pytest.fixture
def sets():
    rng = np.random.default_rng(3)
    real = rng.random((9, 1, 12, 12))
    synthetic = rng.random((14, 1, 12, 12))
    synthetic[5] = real[7]  # a memorised training image
    return synthetic.astype(np.float32), real.astype(np.float32)


def test_per_image_values_and_full_scan_match_skimage(sets):
    synthetic, real = sets
    result = ssim_max_privacy(synthetic, real, q=4, repeats=3, seed=0)
    values, indices = brute_force_max_ssim(synthetic.astype(np.float64), real.astype(np.float64))
    np.testing.assert_allclose(result["per_image_values"], values, atol=1e-5)
    assert result["per_image_indices"] == indices.tolist()
    assert result["per_image_values"][5] == pytest.approx(1.0, abs=1e-6) and result["per_image_indices"][5] == 7
    full = result["ssim_max_full"]
    assert full["value"] == pytest.approx(values.mean(), abs=1e-5)
    assert full["median"] == pytest.approx(np.median(values), abs=1e-5)
    assert full["max"] == pytest.approx(values.max(), abs=1e-5)
    assert full["n_synthetic"] == 14 and full["n_real"] == 9
    json.dumps(result, allow_nan=False)  # the report writes it as is


def test_paper_value_is_mean_over_seeded_repetitions_without_replacement(sets):
    synthetic, real = sets
    result = ssim_max_privacy(synthetic, real, q=4, repeats=5, seed=11)
    paper = result["ssim_max_paper"]
    values = np.array(result["per_image_values"])
    rng = np.random.default_rng(11)
    expected = [values[rng.choice(14, size=4, replace=False)].mean() for _ in range(5)]
    assert paper["per_repetition"] == pytest.approx(expected)
    assert paper["value"] == pytest.approx(np.mean(expected))
    assert all(len(set(draw)) == 4 for draw in paper["drawn_indices"])  # no repeats inside a repetition
    assert paper["q"] == 4 and paper["repeats"] == 5 and paper["seed"] == 11
    again = ssim_max_privacy(synthetic, real, q=4, repeats=5, seed=11)["ssim_max_paper"]
    assert again["drawn_indices"] == paper["drawn_indices"]
    other = ssim_max_privacy(synthetic, real, q=4, repeats=5, seed=12)["ssim_max_paper"]
    assert other["drawn_indices"] != paper["drawn_indices"]


def test_fewer_images_than_q_uses_all_images(sets):
    synthetic, real = sets
    result = ssim_max_privacy(synthetic, real)  # paper defaults q=100, l=10 with only 14 images
    paper = result["ssim_max_paper"]
    assert paper["q"] == 14 and paper["q_requested"] == 100 and paper["repeats"] == 10
    assert paper["value"] == pytest.approx(result["ssim_max_full"]["value"])
    assert all(sorted(draw) == list(range(14)) for draw in paper["drawn_indices"])


def test_ssim_max_scan_runs_once(sets, monkeypatch):
    synthetic, real = sets
    calls = []
    original = ssim_module.ssim_max

    def counting(*args, **kwargs):
        calls.append(args[0].shape[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(ssim_module, "ssim_max", counting)
    ssim_max_privacy(synthetic, real, q=3, repeats=10, seed=0)
    assert calls == [14]  # one scan of every synthetic image, reused by the 10 repetitions


def test_gaussian_window_is_passed_through(sets):
    synthetic, real = sets
    rng = np.random.default_rng(0)
    big_real = rng.random((3, 1, 16, 16)).astype(np.float32)
    big_syn = rng.random((2, 1, 16, 16)).astype(np.float32)
    result = ssim_max_privacy(big_syn, big_real, window="gaussian", q=2, repeats=1)
    expected = [
        max(structural_similarity(s[0], r[0], data_range=1.0, gaussian_weights=True, sigma=1.5,
                                  use_sample_covariance=False) for r in big_real.astype(np.float64))
        for s in big_syn.astype(np.float64)
    ]
    np.testing.assert_allclose(result["per_image_values"], expected, atol=1e-5)
    assert result["ssim_max_paper"]["window"] == "gaussian"


@pytest.mark.parametrize(
    "kwargs, match",
    [({"q": 0}, "q must"), ({"repeats": 0}, "repeats"), ({"seed": 1.5}, "seed"), ({"q": True}, "q must")],
)
def test_bad_arguments(sets, kwargs, match):
    synthetic, real = sets
    with pytest.raises(ValueError, match=match):
        ssim_max_privacy(synthetic, real, **kwargs)


def test_bad_images():
    real = torch.rand(3, 1, 12, 12)
    with pytest.raises(ValueError, match="synthetic and real_train"):
        ssim_max_privacy(torch.rand(2, 1, 10, 12), real)
    with pytest.raises(ValueError, match="synthetic contains"):
        ssim_max_privacy(torch.full((2, 1, 12, 12), float("nan")), real)
    with pytest.raises(ValueError, match="real_train is empty"):
        ssim_max_privacy(torch.rand(2, 1, 12, 12), torch.rand(0, 1, 12, 12))


def test_paper_scan_scans_only_the_drawn_images_and_gives_the_same_protocol_value(sets, monkeypatch):
    synthetic, real = sets
    full = ssim_max_privacy(synthetic, real, q=4, repeats=3, seed=2)
    scanned_counts = []
    original = ssim_module.ssim_max

    def counting(a, b, **options):
        scanned_counts.append(int(a.shape[0]))
        return original(a, b, **options)

    monkeypatch.setattr(ssim_module, "ssim_max", counting)
    paper = ssim_max_privacy(synthetic, real, q=4, repeats=3, seed=2, scan="paper")
    drawn = np.unique(np.concatenate(paper["ssim_max_paper"]["drawn_indices"]))
    assert paper["scanned_indices"] == drawn.tolist() and scanned_counts == [len(drawn)] and len(drawn) < 14
    assert paper["ssim_max_paper"]["per_repetition"] == full["ssim_max_paper"]["per_repetition"]
    assert paper["ssim_max_paper"]["drawn_indices"] == full["ssim_max_paper"]["drawn_indices"]
    assert "ssim_max_full" not in paper and paper["ssim_max_paper"]["scan"] == "paper"
    assert paper["per_image_values"] == [full["per_image_values"][i] for i in drawn]
    assert paper["per_image_indices"] == [full["per_image_indices"][i] for i in drawn]
    with pytest.raises(ValueError, match="scan must be one of"):
        ssim_max_privacy(synthetic, real, scan="some")


def test_gallery_of_a_paper_scan_names_the_drawn_images(sets):
    from medsyn.metrics.privacy import privacy_gallery

    synthetic, real = sets
    paper = ssim_max_privacy(synthetic, real, q=4, repeats=3, seed=2, scan="paper")
    gallery = privacy_gallery(synthetic, real, paper, top=2)
    assert set(gallery["synthetic_indices"]) <= set(paper["scanned_indices"])
    best = int(np.argmax(paper["per_image_values"]))
    assert gallery["synthetic_indices"][0] == paper["scanned_indices"][best]
    np.testing.assert_array_equal(gallery["synthetic_images"][0], synthetic[paper["scanned_indices"][best]])
