"""Generator registry: lazy lookup, building with overrides, loading checkpoints, and refusals."""

import pytest
import torch
import torch.nn.functional as F

from medsyn.data.image_set import ImageSet
from medsyn.models.cvae import CVAE
from medsyn.models.registry import GENERATORS, build_generator, generator_class, load_generator
from medsyn.training.checkpoint import save_checkpoint


def _tiny_set(n=60) -> ImageSet:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = F.interpolate(torch.tensor(digits.images[:n], dtype=torch.float32)[:, None] / 16, size=16)
    return ImageSet(images.clamp(0, 1), torch.tensor(digits.target[:n]), tuple("0123456789"), "digits")


def test_registry_names_the_four_generators_and_resolves_cvae():
    assert set(GENERATORS) == {"cvae", "stylegan2", "ldm", "ddpm"}
    assert generator_class("cvae") is CVAE


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown model 'vae'.*cvae.*ddpm"):
        build_generator("vae", num_classes=2, image_shape=(1, 16, 16))


def test_overrides_split_into_model_config_and_training_settings():
    generator = build_generator(
        "cvae",
        num_classes=3,
        image_shape=(1, 16, 16),
        hidden_dims=[4, 8],
        latent_dim=5,
        steps=7,
        batch_size=9,
    )
    assert generator.config.hidden_dims == (4, 8) and generator.config.latent_dim == 5
    assert (generator.training.steps, generator.training.batch_size) == (7, 9)
    with pytest.raises(ValueError, match="latnt_dim"):
        build_generator("cvae", num_classes=3, image_shape=(1, 16, 16), latnt_dim=5)
    with pytest.raises(ValueError, match="image_shape"):
        build_generator("cvae", num_classes=3, image_shape=(16, 16))


def test_load_generator_restores_the_trained_model(tmp_path):
    generator = build_generator(
        "cvae", num_classes=10, image_shape=(1, 16, 16), hidden_dims=[4, 8], latent_dim=4, steps=5
    )
    generator.fit(_tiny_set(), tmp_path / "c.pt", seed=1, progress=False)
    loaded = load_generator(tmp_path / "c.pt")
    assert isinstance(loaded, CVAE) and loaded.config == generator.config
    labels = torch.arange(10)
    torch.testing.assert_close(loaded.sample(labels, seed=2), generator.sample(labels, seed=2))


def test_checkpoint_of_another_model_or_config_refuses_to_load(tmp_path):
    generator = build_generator(
        "cvae", num_classes=10, image_shape=(1, 16, 16), hidden_dims=[4, 8], latent_dim=4, steps=2
    )
    generator.fit(_tiny_set(), tmp_path / "c.pt", progress=False)
    other = build_generator(
        "cvae", num_classes=10, image_shape=(1, 16, 16), hidden_dims=[4, 8], latent_dim=6, steps=2
    )
    with pytest.raises(ValueError, match="different cvae config"):
        other.fit(_tiny_set(), tmp_path / "c.pt", progress=False)
    from medsyn.training.checkpoint import load_checkpoint

    with pytest.raises(ValueError, match="different cvae config"):
        other.load_weights(load_checkpoint(tmp_path / "c.pt"))
    save_checkpoint(tmp_path / "bad.pt", model="cvae", config={"something": 1}, state={})
    with pytest.raises(ValueError, match="no generator config"):
        load_generator(tmp_path / "bad.pt")
    save_checkpoint(tmp_path / "gan.pt", model="biggan", config={}, state={})
    with pytest.raises(ValueError, match="unknown model 'biggan'"):
        load_generator(tmp_path / "gan.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_generator(tmp_path / "missing.pt")


def test_load_generator_rebuilds_a_dp_model_with_groupnorm(tmp_path):
    generator = build_generator(
        "cvae",
        num_classes=10,
        image_shape=(1, 16, 16),
        hidden_dims=[4, 8],
        latent_dim=4,
        steps=3,
        batch_size=10,
        dp={"noise_multiplier": 1.0},
    )
    generator.fit(_tiny_set(), tmp_path / "dp.pt", seed=0, progress=False)
    loaded = load_generator(tmp_path / "dp.pt")
    assert loaded.batchnorm_replaced_by_groupnorm and loaded.metadata["dp"]["epsilon"] > 0
    torch.testing.assert_close(
        loaded.sample(torch.arange(10), seed=0), generator.sample(torch.arange(10), seed=0)
    )
