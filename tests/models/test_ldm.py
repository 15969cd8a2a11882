"""Conditional latent diffusion: paper size, two-stage fit, latent scale, cross-attention conditioning,
sampler step counts, checkpoints and resume of either stage."""

import numpy as np
import pytest
import torch

import medsyn.models.ldm as ldm_module
from medsyn.data.image_set import ImageSet
from medsyn.models.ldm import ConditionalLDM, LDMConfig, autoencoder_checkpoint_path
from medsyn.training.batches import ShuffledBatches
from medsyn.training.checkpoint import load_checkpoint

TINY = {
    "autoencoder_channels": [8, 8],
    "autoencoder_attention_levels": [False, False],
    "autoencoder_num_res_blocks": 1,
    "autoencoder_norm_num_groups": 4,
    "latent_channels": 2,
    "autoencoder_steps": 2,
    "autoencoder_learning_rate": 1e-3,
    "channels": [8, 16],
    "attention_levels": [False, True],
    "num_res_blocks": 1,
    "num_head_channels": 8,
    "norm_num_groups": 4,
    "class_embedding_dim": 8,
    "num_train_timesteps": 30,
    "learning_rate": 1e-3,
    "ema_decay": 0.9,
    "sampler": "ddim",
    "sampling_steps": 3,
}
SHAPE = (1, 8, 8)


def _model(training=None, **overrides) -> ConditionalLDM:
    return ConditionalLDM.from_config({**TINY, **overrides}, num_classes=3, image_shape=SHAPE, training=training)


def _train_set(n: int = 18) -> ImageSet:
    generator = torch.Generator().manual_seed(0)
    return ImageSet(torch.rand(n, *SHAPE, generator=generator), torch.arange(n) % 3, ("a", "b", "c"), "random")


def _randomise_zero_initialised_weights(model: ConditionalLDM) -> ConditionalLDM:
    """MONAI zero-initialises the output convolutions of the U-Net, its residual blocks and attention
    projections: an untrained U-Net predicts 0 whatever the class. Random weights make the class matter."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        for parameter in model.ema.module.parameters():
            if parameter.ndim > 1 and not parameter.any():
                torch.nn.init.normal_(parameter, std=0.1)
    return model


def test_paper_size_model_has_hundreds_of_millions_of_parameters():
    with torch.device("meta"):  # built without memory or initialisation time
        model = ConditionalLDM(LDMConfig(), num_classes=10, image_shape=(3, 256, 256))
    counts = model.parameter_counts()
    total = model.parameter_count()
    print(f"LDM 256x256: autoencoder {counts['autoencoder'] / 1e6:.1f}M + diffusion {counts['diffusion'] / 1e6:.1f}M"
          f" = {total / 1e6:.1f}M parameters")  # fmt: skip
    assert model.latent_shape == (3, 64, 64)  # paper 000 §4.2.3: a 64x64x3 latent for 256x256 inputs
    assert 400e6 <= total <= 600e6  # paper 000 §4.2.3: "between 400 million to 600 million"
    assert model.network.class_embedding.embedding_dim == 512
    cross_attention = [m for name, m in model.network.unet.named_modules() if name.endswith("attn2")]
    assert cross_attention, "the class must reach the U-Net through cross-attention"


def test_paper_hyper_parameters_are_the_defaults():
    config = LDMConfig()
    assert (config.kl_weight, config.autoencoder_learning_rate, config.autoencoder_batch_size) == (1e-6, 4.5e-6, 16)
    assert (config.beta_schedule, config.beta_start, config.beta_end) == ("linear_beta", 0.0015, 0.0195)
    assert (config.num_train_timesteps, config.learning_rate, config.class_embedding_dim) == (1000, 1e-6, 512)


def test_sample_contract_and_cross_attention_conditioning():
    model = _randomise_zero_initialised_weights(_model())
    labels = torch.tensor([0, 1, 2])
    images = model.sample(labels, seed=1)
    assert images.shape == (3, *SHAPE) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1
    torch.testing.assert_close(model.sample(labels, seed=1), images, rtol=0, atol=0)
    assert not torch.allclose(model.sample(labels, seed=2), images)
    class_0, class_1 = model.sample(torch.tensor([0]), seed=3), model.sample(torch.tensor([1]), seed=3)
    assert (class_0 - class_1).abs().max() > 1e-4
    null_0 = model.sample(torch.tensor([0]), seed=3, guidance_scale=0.0)
    null_1 = model.sample(torch.tensor([1]), seed=3, guidance_scale=0.0)
    torch.testing.assert_close(null_0, null_1, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="labels"):
        model.sample(torch.tensor([3]))


@pytest.mark.parametrize("sampler,steps,expected", [("ddim", 5, 5), ("ddim", 2, 2), ("ddpm", None, 30)])
def test_unet_is_called_once_per_sampling_step(sampler, steps, expected):
    model = _model()
    calls = []
    model.ema.module.unet.register_forward_hook(lambda *args: calls.append(1))
    overrides = {"sampler": sampler} | ({"sampling_steps": steps} if steps else {})
    model.sample(torch.tensor([0, 2]), guidance_scale=3.0, **overrides)
    assert len(calls) == expected


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match="downsamples by 2.*divisible by 4"):
        ConditionalLDM.from_config(TINY, num_classes=3, image_shape=(1, 10, 10))
    with pytest.raises(ValueError, match="autoencoder_norm_num_groups"):
        _model(autoencoder_norm_num_groups=3)
    with pytest.raises(ValueError, match="dp"):
        _model(training={"dp": {"noise_multiplier": 1.0}})
    with pytest.raises(ValueError, match=r"model_config\.kl: unknown key; valid keys: .*'kl_weight'"):
        _model(kl=1.0)


def test_fit_trains_both_stages_and_stores_the_latent_scale(tmp_path):
    train = _train_set()
    model = _model(training={"steps": 3, "batch_size": 6}, autoencoder_steps=3)
    path = model.fit(train, tmp_path / "ldm.pt", seed=4, progress=False)
    assert len(model.autoencoder_history) == 3 and len(model.history) == 3
    stage_1 = load_checkpoint(autoencoder_checkpoint_path(path), model="ldm_autoencoder")
    assert stage_1["step"] == 3

    # Oracle: 1 / std (float64, numpy, ddof=1 as torch) of the stage-1 posterior means of stage 2's first batch.
    reference = ConditionalLDM.from_config(TINY | {"autoencoder_steps": 3}, num_classes=3, image_shape=SHAPE,
                                           training={"steps": 3, "batch_size": 6})  # fmt: skip
    reference.codec.autoencoder.load_state_dict(stage_1["state"]["autoencoder"])
    first_batch = ShuffledBatches(len(train), 6, seed=4).next()
    with torch.no_grad():
        means = reference.codec.autoencoder.encode(train.images[first_batch] * 2 - 1)[0]
    expected = 1.0 / np.std(means.double().numpy(), ddof=1)
    assert float(model.codec.scale_factor) == pytest.approx(expected, rel=1e-5)
    assert model.metadata["scale_factor"] == pytest.approx(expected, rel=1e-5)


def test_checkpoint_round_trip_and_refusal(tmp_path):
    from medsyn.models.registry import load_generator

    model = _model(training={"steps": 2, "batch_size": 6})
    path = model.fit(_train_set(), tmp_path / "ldm.pt", progress=False)
    loaded = load_generator(path)
    assert isinstance(loaded, ConditionalLDM)
    labels = torch.tensor([2, 0])
    torch.testing.assert_close(loaded.sample(labels, seed=5), model.sample(labels, seed=5), rtol=0, atol=0)
    other = _model(training={"steps": 2, "batch_size": 6}, latent_channels=3)
    with pytest.raises(ValueError, match="different ldm config"):
        other.load_weights(load_checkpoint(path))
    with pytest.raises(ValueError, match="different ldm config"):
        other.fit(_train_set(), path, progress=False)


def _weights(model: ConditionalLDM) -> list[torch.Tensor]:
    return [*model.codec.state_dict().values(), *model.network.state_dict().values(),
            *model.ema.module.state_dict().values()]  # fmt: skip


def test_resume_in_either_stage_reaches_the_uninterrupted_state(tmp_path, monkeypatch):
    train = _train_set()
    settings = {"steps": 4, "batch_size": 6, "checkpoint_every": 2}
    uninterrupted = _model(training=settings, autoencoder_steps=4)
    uninterrupted.fit(train, tmp_path / "full.pt", seed=1, progress=False)

    # Kill stage 1 during its 3rd step (its checkpoint holds step 2), then restart the whole fit.
    real_losses = ldm_module.autoencoder_per_sample_losses
    calls = []

    def killed_at_third_call(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("simulated kill")
        return real_losses(*args)

    monkeypatch.setattr(ldm_module, "autoencoder_per_sample_losses", killed_at_third_call)
    with pytest.raises(KeyboardInterrupt):
        _model(training=settings, autoencoder_steps=4).fit(train, tmp_path / "split.pt", seed=1, progress=False)
    monkeypatch.setattr(ldm_module, "autoencoder_per_sample_losses", real_losses)
    assert load_checkpoint(autoencoder_checkpoint_path(tmp_path / "split.pt"))["step"] == 2
    assert not (tmp_path / "split.pt").exists()

    # Stage 2 stopped after 2 of its 4 steps, then resumed.
    _model(training={**settings, "steps": 2}, autoencoder_steps=4).fit(train, tmp_path / "split.pt", seed=1,
                                                                       progress=False)  # fmt: skip
    resumed = _model(training=settings, autoencoder_steps=4)
    resumed.fit(train, tmp_path / "split.pt", seed=1, progress=False)

    assert [h["loss"] for h in resumed.history] == pytest.approx([h["loss"] for h in uninterrupted.history], rel=1e-6)
    for a, b in zip(_weights(uninterrupted), _weights(resumed), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_optional_patch_adversarial_loss_trains_a_discriminator(tmp_path):
    with pytest.raises(ValueError, match="discriminator_layers"):
        _model(adversarial_weight=0.1, discriminator_layers=3)  # 8x8 images are too small for 3 layers
    model = _model(training={"steps": 1, "batch_size": 6}, adversarial_weight=0.1, autoencoder_steps=2,
                   discriminator_layers=1)  # fmt: skip
    before = [p.clone() for p in model.discriminator.parameters()]
    model.fit(_train_set(), tmp_path / "ldm.pt", progress=False)
    assert {"adversarial", "discriminator"} <= set(model.autoencoder_history[-1])
    assert any(not torch.equal(a, b) for a, b in zip(before, model.discriminator.parameters()))
