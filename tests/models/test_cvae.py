"""Conditional VAE (paper 000 §4.2.1): architecture, loss, config validation, training, DP, sampling."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from medsyn.data.image_set import ImageSet
from medsyn.models.cvae import CVAE, CVAEConfig, CVAENetwork, cvae_per_sample_losses
from medsyn.training.checkpoint import load_checkpoint

TINY = {"hidden_dims": [8, 16, 32], "latent_dim": 16}


def _digits(n=300, size=32) -> ImageSet:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images[:n], dtype=torch.float32)[:, None] / 16
    images = F.interpolate(images, size=size, mode="bilinear", align_corners=False).clamp(0, 1)
    return ImageSet(
        images, torch.tensor(digits.target[:n]), tuple(str(d) for d in range(10)), "sklearn-digits"
    )


def test_paper_defaults_are_the_paper_values():
    config = CVAEConfig()
    assert config.hidden_dims == (16, 32, 64, 128, 256, 1024)
    assert (config.latent_dim, config.beta, config.learning_rate, config.weight_decay) == (
        128,
        0.002,
        1e-3,
        0.01,
    )


def test_paper_size_model_for_256px_has_tens_of_millions_of_parameters():
    model = CVAE(CVAEConfig(), num_classes=10, image_shape=(3, 256, 256))
    count = model.parameter_count()
    print(f"CVAE paper size, 3x256x256, 10 classes: {count:,} parameters")
    assert 10_000_000 <= count < 100_000_000
    network = model.network
    assert sum(isinstance(m, nn.BatchNorm2d) for m in network.modules()) == 12  # 6 encoder + 6 decoder stages
    assert network.bottleneck_shape == (1024, 4, 4)
    assert network.to_mean.out_features == network.to_log_variance.out_features == 128
    assert network.encoder[0][0].in_channels == 3 + 10  # condition concatenated to the input as channels
    assert network.from_latent.in_features == 128 + 10  # and to the latent


def test_forward_shapes_and_the_condition_changes_the_output():
    torch.manual_seed(0)
    network = CVAENetwork(CVAEConfig(**TINY), num_classes=4, image_shape=(1, 32, 32)).eval()
    images = torch.rand(5, 1, 32, 32)
    reconstruction, mean, log_variance = network(
        images, F.one_hot(torch.zeros(5, dtype=torch.int64), 4).float()
    )
    assert reconstruction.shape == images.shape and mean.shape == log_variance.shape == (5, 16)
    assert 0 < reconstruction.min() and reconstruction.max() < 1
    latent = torch.randn(2, 16)
    a = network.decode(latent, F.one_hot(torch.tensor([0, 0]), 4).float())
    b = network.decode(latent, F.one_hot(torch.tensor([3, 3]), 4).float())
    assert not torch.allclose(a, b)


def test_loss_is_pixel_mse_plus_beta_times_gaussian_kl():
    images, reconstruction = torch.rand(2, 1, 4, 4), torch.rand(2, 1, 4, 4)
    mean, log_variance = torch.tensor([[0.5, -1.0], [0.0, 0.0]]), torch.tensor([[0.2, -0.3], [0.0, 0.0]])
    losses = cvae_per_sample_losses(images, reconstruction, mean, log_variance, beta=0.002)
    variance = log_variance.exp()
    # KL(N(m, v) || N(0, 1)) = 0.5 * (v + m^2 - 1 - log v), per dimension
    kl = 0.5 * (variance + mean**2 - 1 - log_variance).sum(1)
    mse = ((images - reconstruction) ** 2).mean(dim=(1, 2, 3))
    torch.testing.assert_close(losses["kl"], kl)
    torch.testing.assert_close(losses["loss"], mse + 0.002 * kl)
    assert losses["kl"][1] == 0  # the prior itself


@pytest.mark.parametrize(
    "overrides, image_shape, key",
    [
        ({}, (1, 32, 32), "hidden_dims"),  # six stride-2 stages do not fit 32x32
        ({"hidden_dims": [8, 16, 32]}, (1, 36, 36), "divisible by 8"),
        ({"hidden_dims": []}, (1, 32, 32), "hidden_dims"),
        ({"latent_dim": 0}, (1, 32, 32), "latent_dim"),
        ({"beta": -1.0, **TINY}, (1, 32, 32), "beta"),
        ({"learning_rate": 0, **TINY}, (1, 32, 32), "learning_rate"),
        ({"hidden_dim": [8]}, (1, 32, 32), "hidden_dim"),  # unknown key, named
    ],
)
def test_config_errors_name_the_key(overrides, image_shape, key):
    with pytest.raises(ValueError, match=key):
        CVAE.from_config(overrides, num_classes=10, image_shape=image_shape)


def test_training_settings_errors_name_the_key():
    with pytest.raises(ValueError, match="noise_multiplier"):
        CVAE.from_config(
            TINY, num_classes=10, image_shape=(1, 32, 32), training={"dp": {"noise_multiplier": -0.5}}
        )
    with pytest.raises(ValueError, match="steps"):
        CVAE.from_config(TINY, num_classes=10, image_shape=(1, 32, 32), training={"steps": -1})


def test_tiny_training_lowers_the_loss_and_samples_are_seeded(tmp_path):
    train = _digits()
    model = CVAE.from_config(
        TINY, num_classes=10, image_shape=(1, 32, 32), training={"steps": 80, "batch_size": 32}
    )
    model.fit(train, tmp_path / "cvae.pt", seed=0, progress=False)
    first = sum(h["loss"] for h in model.history[:10]) / 10
    last = sum(h["loss"] for h in model.history[-10:]) / 10
    assert last < 0.5 * first, (first, last)
    labels = torch.tensor([0, 1, 2, 9, 9])
    images = model.sample(labels, seed=4)
    assert images.shape == (5, 1, 32, 32) and images.dtype == torch.float32
    assert 0 <= images.min() and images.max() <= 1
    assert torch.equal(images, model.sample(labels, seed=4))
    assert not torch.equal(images, model.sample(labels, seed=5))
    payload = load_checkpoint(tmp_path / "cvae.pt", model="cvae")
    assert payload["step"] == 80 and payload["metadata"]["class_names"] == list("0123456789")
    with pytest.raises(ValueError, match="labels"):
        model.sample(torch.tensor([10]))


def test_dp_training_replaces_batchnorm_and_reports_epsilon(tmp_path):
    train = _digits(200)
    model = CVAE.from_config(
        TINY,
        num_classes=10,
        image_shape=(1, 32, 32),
        training={"steps": 20, "batch_size": 20, "dp": {"noise_multiplier": 1.0, "max_grad_norm": 1.0}},
    )
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.network.modules())
    model.fit(train, tmp_path / "dp.pt", seed=0, progress=False)
    metadata = load_checkpoint(tmp_path / "dp.pt")["metadata"]
    assert metadata["batchnorm_replaced_by_groupnorm"] is True
    assert metadata["dp"]["delta"] == 1 / 200 and metadata["dp"]["sample_rate"] == 0.1
    assert 0 < metadata["dp"]["epsilon"] < 100


def test_training_set_that_does_not_match_the_model_is_rejected(tmp_path):
    model = CVAE.from_config(TINY, num_classes=4, image_shape=(1, 32, 32), training={"steps": 1})
    with pytest.raises(ValueError, match="classes"):
        model.fit(_digits(50), tmp_path / "x.pt", progress=False)


def test_reconstruct_decodes_the_posterior_mean_with_the_label(monkeypatch):
    import medsyn.models.cvae as cvae_module

    model = CVAE.from_config(TINY, num_classes=10, image_shape=(1, 32, 32))
    data = _digits(5)
    reconstructions = model.reconstruct(data.images, data.labels)
    network = model.network.eval()
    with torch.no_grad():
        condition = F.one_hot(data.labels, 10).float()
        mean, _log_variance = network.encode(data.images, condition)
        expected = network.decode(mean, condition)
    assert reconstructions.shape == data.images.shape and reconstructions.dtype == torch.float32
    torch.testing.assert_close(reconstructions, expected)  # the mean, no sampled noise
    assert torch.equal(reconstructions, model.reconstruct(data.images, data.labels))  # deterministic
    assert not torch.allclose(reconstructions, model.reconstruct(data.images, (data.labels + 1) % 10))  # label used
    monkeypatch.setattr(cvae_module, "SAMPLE_CHUNK", 2)  # chunking changes memory, not results
    torch.testing.assert_close(model.reconstruct(data.images, data.labels), reconstructions)
    with pytest.raises(ValueError, match="labels"):
        model.reconstruct(data.images, torch.tensor([0, 1, 2, 3, 10]))
    with pytest.raises(ValueError, match=r"5 images but 4 labels"):
        model.reconstruct(data.images, data.labels[:4])
    with pytest.raises(ValueError, match=r"images must be a tensor \[N, 1, 32, 32\], got \(5, 1, 16, 16\)"):
        model.reconstruct(data.images[:, :, :16, :16], data.labels)


def test_true_pair_scores_use_the_cvae_reconstructions():
    from medsyn.evaluation.fidelity_suite import true_pair_scores
    from medsyn.metrics.true_pairs import true_pair_psnr_ssim

    model = CVAE.from_config(TINY, num_classes=10, image_shape=(1, 32, 32))
    data = _digits(6)
    scores = true_pair_scores(model, data)
    assert scores == pytest.approx(true_pair_psnr_ssim(data.images, model.reconstruct(data.images, data.labels)))
