"""Conditional StyleGAN2: interface, architecture invariants, training, checkpoints, exact resume, DP."""

from __future__ import annotations

import math

import pytest
import torch

from medsyn.data.digits import load_digits_images
from medsyn.models.registry import build_generator, load_generator
from medsyn.models.stylegan2 import STYLEGAN2_PRESETS, ConditionalStyleGAN2, StyleGAN2Config
from medsyn.models.stylegan2_layers import ModulatedConv2d

# A StyleGAN2 small enough to train tens of steps in seconds on one CPU core.
TINY = {
    "z_dim": 32, "w_dim": 32, "embed_dim": 32, "mapping_layers": 2, "channel_base": 128, "channel_max": 16,
    "ema_half_life_images": 200, "r1_gamma": 1.0, "r1_interval": 4, "pl_interval": 2,
}  # fmt: skip


def tiny_model(image_shape=(1, 16, 16), num_classes=10, **overrides) -> ConditionalStyleGAN2:
    settings = {**TINY, "steps": 10, "batch_size": 8, **overrides}
    return build_generator("stylegan2", num_classes=num_classes, image_shape=image_shape, **settings)


@pytest.fixture(scope="module")
def digits16():
    digits = load_digits_images(16)
    return digits.subset(torch.arange(200))


@pytest.mark.parametrize("image_shape", [(1, 16, 16), (3, 8, 8), (3, 32, 32)])
def test_sample_shape_dtype_and_range(image_shape):
    model = tiny_model(image_shape=image_shape, num_classes=3)
    images = model.sample(torch.tensor([0, 1, 2, 2, 0]), seed=0)
    assert images.shape == (5, *image_shape)
    assert images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1
    assert images.std() > 0.01  # not a constant image
    assert model.sample(torch.tensor([], dtype=torch.int64)).shape == (0, *image_shape)


def test_sample_is_deterministic_for_a_seed_and_varies_across_seeds():
    model = tiny_model()
    labels = torch.tensor([3, 3, 7])
    assert torch.equal(model.sample(labels, seed=5), model.sample(labels, seed=5))
    assert not torch.allclose(model.sample(labels, seed=5), model.sample(labels, seed=6))
    # Batching does not change the images of a seed.
    assert torch.allclose(model.sample(labels, seed=5, batch_size=1), model.sample(labels, seed=5), atol=1e-6)


def test_sampling_does_not_touch_the_global_rng():
    model = tiny_model()
    state = torch.get_rng_state()
    model.sample(torch.tensor([1, 2]), seed=3)
    assert torch.equal(state, torch.get_rng_state())


def test_the_label_changes_the_image_for_the_same_seed():
    model = tiny_model()
    a = model.sample(torch.tensor([0, 0]), seed=1)
    b = model.sample(torch.tensor([4, 4]), seed=1)
    assert (a - b).abs().mean() > 1e-3


def test_truncation_pulls_samples_towards_the_class_mean():
    model = tiny_model()
    labels = torch.full((16,), 2)
    spread_full = model.sample(labels, seed=0).std(dim=0).mean()
    spread_truncated = model.sample(labels, seed=0, truncation_psi=0.1).std(dim=0).mean()
    assert spread_truncated < spread_full
    # psi close to 1 barely moves the images of the same seed
    nearly = model.sample(labels, seed=0, truncation_psi=0.999)
    assert (nearly - model.sample(labels, seed=0)).abs().max() < 0.05


@pytest.mark.parametrize("labels", [torch.tensor([0, 10]), torch.tensor([-1]), torch.tensor([0.5, 1.0])])
def test_bad_labels_raise(labels):
    with pytest.raises(ValueError, match="labels"):
        tiny_model().sample(labels)


@pytest.mark.parametrize(
    "image_shape, message",
    [
        ((1, 12, 12), "power-of-two"),
        ((1, 4, 4), "power-of-two"),
        ((1, 16, 32), "square"),
        ((2, 16, 16), "channels"),
    ],
)
def test_bad_image_shape_names_the_key(image_shape, message):
    with pytest.raises(ValueError, match=f"image_shape.*{message}"):
        tiny_model(image_shape=image_shape)


@pytest.mark.parametrize(
    "override, key",
    [
        ({"r1_gamma": -1.0}, "r1_gamma"),
        ({"w_dim": 0}, "w_dim"),
        ({"style_mixing_prob": 1.5}, "style_mixing_prob"),
        ({"no_such_key": 1}, "no_such_key"),
        ({"betas": (0.0, 1.0)}, "betas"),
    ],
)
def test_bad_config_value_names_the_key(override, key):
    with pytest.raises(ValueError, match=key):
        tiny_model(**override)


def test_dp_sigma_below_zero_fails_before_training():
    with pytest.raises(ValueError, match="noise_multiplier"):
        tiny_model(dp={"noise_multiplier": -0.1})


def test_weight_demodulation_gives_unit_output_std_whatever_the_style_scale():
    torch.manual_seed(0)
    x = torch.randn(4, 64, 32, 32)
    for demodulate, expect_unit in ((True, True), (False, False)):
        conv = ModulatedConv2d(64, 32, w_dim=16, kernel_size=3, demodulate=demodulate)
        with torch.no_grad():
            conv.affine.bias.fill_(10.0)  # large styles: only demodulation restores unit scale
        with torch.no_grad():
            # Interior pixels only: zero padding lowers the border's variance.
            out = conv(x, torch.randn(4, 16))[:, :, 1:-1, 1:-1]
        std = float(out.std())
        if expect_unit:
            assert 0.9 < std < 1.1, std
        else:
            assert std > 3.0, std


def test_paper_size_model_has_about_50_million_parameters():
    """Paper 000 §4.2.2: 'on the order of 50 millions' at 256x256 (z, w = 512, 8 mapping layers)."""
    model = ConditionalStyleGAN2(StyleGAN2Config(), num_classes=2, image_shape=(3, 256, 256))
    count = model.parameter_count()
    print(f"StyleGAN2 paper size at 256x256: {count / 1e6:.2f}M parameters (G + D)")
    assert 20_000_000 <= count <= 80_000_000
    assert len(model.G.mapping.layers) == 8
    assert model.G.num_ws == 14


def test_fit_lowers_the_discriminator_loss_and_writes_a_loadable_checkpoint(digits16, tmp_path):
    model = tiny_model(steps=40)
    checkpoint = model.fit(digits16, tmp_path / "stylegan2.pt", progress=False)
    assert checkpoint.is_file()
    losses_D = [entry["loss_D"] for entry in model.history]
    assert len(losses_D) == 40 and all(math.isfinite(value) for value in losses_D)
    assert sum(losses_D[-10:]) / 10 < sum(losses_D[:5]) / 5  # D learns to tell real from fake
    assert {"path_length_penalty", "r1_penalty"} <= set(model.history[0])  # lazy regularisers run at step 0

    loaded = ConditionalStyleGAN2.from_checkpoint(checkpoint)
    labels = torch.arange(10)
    assert torch.equal(loaded.sample(labels, seed=2), model.sample(labels, seed=2))
    assert torch.equal(load_generator(checkpoint).sample(labels, seed=2), model.sample(labels, seed=2))
    assert loaded.metadata["class_names"] == list(digits16.class_names)

    with pytest.raises(ValueError, match="w_dim"):
        tiny_model(steps=40, w_dim=16).load_checkpoint(checkpoint)
    with pytest.raises(ValueError, match="image_shape"):
        tiny_model(steps=40, image_shape=(1, 32, 32)).load_checkpoint(checkpoint)


def test_fit_rejects_a_training_set_of_another_shape(digits16, tmp_path):
    with pytest.raises(ValueError, match="image_shape"):
        tiny_model(image_shape=(1, 32, 32)).fit(digits16, tmp_path / "x.pt", progress=False)
    with pytest.raises(ValueError, match="num_classes"):
        tiny_model(num_classes=3).fit(digits16, tmp_path / "x.pt", progress=False)


def test_resume_reaches_the_state_of_an_uninterrupted_run(digits16, tmp_path):
    k = 5  # odd, so the resumed half starts between lazy-regularisation steps
    uninterrupted = tiny_model(steps=2 * k)
    uninterrupted.fit(digits16, tmp_path / "full.pt", seed=3, progress=False)

    tiny_model(steps=k).fit(digits16, tmp_path / "resumed.pt", seed=3, progress=False)
    resumed = tiny_model(steps=2 * k)  # a fresh process would rebuild the model exactly like this
    resumed.fit(digits16, tmp_path / "resumed.pt", seed=3, progress=False)

    assert len(resumed.history) == 2 * k
    for a, b in zip(uninterrupted.history, resumed.history):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6)
    for network in ("G", "D", "G_ema"):
        state_a = getattr(uninterrupted, network).state_dict()
        state_b = getattr(resumed, network).state_dict()
        for name in state_a:
            torch.testing.assert_close(state_a[name], state_b[name], rtol=1e-5, atol=1e-6,
                                       msg=f"{network}.{name}")


def test_dp_run_keeps_only_the_discriminator_private_and_reports_epsilon(digits16, tmp_path):
    model = tiny_model(steps=4, dp={"noise_multiplier": 1.0, "max_grad_norm": 1.0})
    assert model.D.mbstd is None  # minibatch std mixes samples: off under DP
    from opacus.validators import ModuleValidator

    assert ModuleValidator.validate(model.D, strict=False) == []
    checkpoint = model.fit(digits16, tmp_path / "dp.pt", progress=False)
    metadata = load_generator(checkpoint).metadata
    assert metadata["private_networks"] == ["D"]
    assert metadata["r1_regularisation"] is False and metadata["minibatch_std"] is False
    assert metadata["dp_delta"] == pytest.approx(1 / len(digits16))
    assert 0 < metadata["dp_epsilon"] < math.inf
    assert metadata["dp_epsilon"] == pytest.approx(model.history[-1]["epsilon"])
    # More steps spend more privacy.
    assert model.history[0]["epsilon"] < model.history[-1]["epsilon"]
    # After training D is a plain module again (Opacus' hooks and per-sample gradients removed).
    assert not any(hasattr(parameter, "grad_sample") for parameter in model.D.parameters())


def test_presets_set_defaults_that_explicit_keys_override():
    model = build_generator("stylegan2", num_classes=10, image_shape=(1, 32, 32), preset="tiny", w_dim=48)
    assert model.config.z_dim == STYLEGAN2_PRESETS["tiny"]["z_dim"] and model.config.w_dim == 48
    paper = build_generator("stylegan2", num_classes=2, image_shape=(3, 8, 8), preset="paper")
    assert paper.config == StyleGAN2Config()
    with pytest.raises(ValueError, match="preset"):
        build_generator("stylegan2", num_classes=2, image_shape=(3, 8, 8), preset="huge")


def _train_on_rank(rank: int, world_size: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        train = load_digits_images(16).subset(torch.arange(64))
        model = tiny_model(steps=4)
        model.fit(train, f"{out_dir}/checkpoint.pt", seed=1, progress=False)
        torch.save({"G": model.G.state_dict(), "D": model.D.state_dict()}, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_train_in_step(tmp_path):
    """DDP: gradients are averaged over ranks (R1 and path length included), so both ranks end identical."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mp.spawn(_train_on_rank, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    for network in ("G", "D"):
        for name, weight in rank0[network].items():
            torch.testing.assert_close(weight, rank1[network][name], rtol=0, atol=0, msg=f"{network}.{name}")
    checkpoint = ConditionalStyleGAN2.from_checkpoint(tmp_path / "checkpoint.pt")
    torch.testing.assert_close(checkpoint.G.state_dict()["synthesis.const"], rank0["G"]["synthesis.const"])
    fresh = tiny_model()
    # it trained:
    assert not torch.equal(fresh.G.state_dict()["synthesis.const"], rank0["G"]["synthesis.const"])


def test_dp_survives_empty_poisson_batches_with_a_pure_noise_step(digits16, tmp_path):
    tiny_set = digits16.subset(torch.arange(4))
    model = tiny_model(steps=8, batch_size=1, dp={"noise_multiplier": 1.0})  # sample rate 1/4
    before = {name: value.clone() for name, value in model.D.state_dict().items()}
    model.fit(tiny_set, tmp_path / "dp_empty.pt", progress=False)
    # A non-empty batch has loss_D > 0 (a sum of softplus terms): exactly 0 marks an empty Poisson batch.
    empty_steps = [entry for entry in model.history if entry["loss_D"] == 0.0]
    assert empty_steps, "seeded Poisson sampling at rate 1/4 should draw an empty batch in 8 steps"
    assert all(math.isfinite(entry["loss_G"]) for entry in model.history)  # G trains every step
    assert any(not torch.equal(before[name], value) for name, value in model.D.state_dict().items())


def test_opacus_per_sample_gradients_of_the_discriminator_are_those_of_each_real_fake_pair():
    """Under DP a 'sample' is the pair (real_i, fake_i); Opacus' per-sample gradients of D (functorch path,
    D called twice per step) must equal the gradient of each pair's loss computed one by one."""
    import copy

    import torch.nn.functional as F
    from opacus import GradSampleModule

    from medsyn.models.stylegan2_layers import Discriminator

    torch.manual_seed(0)
    discriminator = Discriminator(16, 1, 3, channel_base=128, channel_max=16, mbstd_group_size=0)
    real, fake = torch.rand(3, 1, 16, 16) * 2 - 1, torch.rand(3, 1, 16, 16) * 2 - 1
    labels = torch.tensor([0, 2, 1])

    def pair_losses(module, r, f, y):
        return F.softplus(module(f, y)) + F.softplus(-module(r, y))

    oracle = copy.deepcopy(discriminator)  # unhooked twin: per-pair gradients one by one
    wrapped = GradSampleModule(discriminator, batch_first=True, loss_reduction="mean")
    pair_losses(wrapped, real, fake, labels).mean().backward()
    for i in range(3):
        expected = torch.autograd.grad(
            pair_losses(oracle, real[i : i + 1], fake[i : i + 1], labels[i : i + 1]).sum(),
            list(oracle.parameters()),
        )
        for (name, parameter), gradient in zip(discriminator.named_parameters(), expected):
            assert isinstance(parameter.grad_sample, torch.Tensor), name
            torch.testing.assert_close(parameter.grad_sample[i], gradient, rtol=1e-4, atol=1e-6, msg=name)


def test_under_dp_the_generator_never_sees_the_private_batch_labels_or_size():
    from medsyn.models.stylegan2 import _Trainer

    batch_labels = torch.tensor([3, 3, 3])
    public = _Trainer(tiny_model(), num_train=100)
    assert torch.equal(public._generator_labels(batch_labels), batch_labels)  # non-private: data distribution
    private = _Trainer(tiny_model(dp={"noise_multiplier": 1.0}), num_train=100)
    try:
        torch.manual_seed(0)
        drawn = torch.cat([private._generator_labels(batch_labels) for _ in range(20)])
        assert len(drawn) == 20 * 8  # the expected batch size, whatever the Poisson batch held
        assert set(drawn.tolist()) == set(range(10))  # uniform over all classes, not the batch's class 3
    finally:
        private.close()
