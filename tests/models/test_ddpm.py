"""Conditional pixel DDPM: sampling contract, conditioning, sampler step counts, checkpoints, resume, DP-SGD."""

import math

import pytest
import torch

from medsyn.data.image_set import ImageSet
from medsyn.models.ddpm import ConditionalDDPM, DDPMConfig
from medsyn.models.diffusion_sampling import NoiseSchedule, build_scheduler, reverse_diffusion
from medsyn.training.checkpoint import load_checkpoint

TINY = {
    "channels": [8, 16],
    "attention_levels": [False, False],
    "num_res_blocks": 1,
    "norm_num_groups": 4,
    "num_head_channels": 8,
    "num_train_timesteps": 40,
    "sampler": "ddim",
    "sampling_steps": 4,
    "ema_decay": 0.9,
}
SHAPE = (1, 8, 8)


def _model(training=None, **overrides) -> ConditionalDDPM:
    return ConditionalDDPM.from_config({**TINY, **overrides}, num_classes=3, image_shape=SHAPE, training=training)


def _train_set(n: int = 24) -> ImageSet:
    generator = torch.Generator().manual_seed(0)
    return ImageSet(torch.rand(n, *SHAPE, generator=generator), torch.arange(n) % 3, ("a", "b", "c"), "random")


def _with_random_output_layer(model: ConditionalDDPM) -> ConditionalDDPM:
    """MONAI zero-initialises the last convolution of the U-Net and of every residual block (epsilon = 0
    before training, whatever the input or class); give those random weights so an untrained network's
    output depends on its inputs."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        for parameter in model.ema.module.parameters():
            if parameter.ndim > 1 and not parameter.any():
                torch.nn.init.normal_(parameter, std=0.1)
    return model


def _count_unet_calls(model: ConditionalDDPM) -> list[int]:
    calls = [0]
    model.ema.module.unet.register_forward_hook(lambda *args: calls.__setitem__(0, calls[0] + 1))
    return calls


def test_sample_shape_range_dtype_and_seed_determinism():
    model = _with_random_output_layer(_model())
    labels = torch.tensor([0, 1, 2, 2])
    first = model.sample(labels, seed=3)
    assert first.shape == (4, *SHAPE) and first.dtype == torch.float32
    assert first.min() >= 0 and first.max() <= 1 and torch.isfinite(first).all()
    torch.testing.assert_close(model.sample(labels, seed=3), first, rtol=0, atol=0)
    assert not torch.allclose(model.sample(labels, seed=4), first)
    assert model.sample(torch.zeros(0, dtype=torch.int64)).shape == (0, *SHAPE)


def test_label_changes_the_sample_and_guidance_zero_ignores_it():
    model = _with_random_output_layer(_model())
    same_noise = {"seed": 5, "sampler": "ddim", "eta": 0.0}
    class_0 = model.sample(torch.tensor([0]), **same_noise)
    class_2 = model.sample(torch.tensor([2]), **same_noise)
    assert (class_0 - class_2).abs().max() > 1e-4  # the class embedding reaches the output
    # guidance_scale 0 is the unconditional ("null" label) model: the class must no longer matter.
    unconditional_0 = model.sample(torch.tensor([0]), guidance_scale=0.0, **same_noise)
    unconditional_2 = model.sample(torch.tensor([2]), guidance_scale=0.0, **same_noise)
    torch.testing.assert_close(unconditional_0, unconditional_2, rtol=0, atol=1e-5)
    assert (unconditional_0 - class_0).abs().max() > 1e-4


@pytest.mark.parametrize("bad", [torch.tensor([0, 3]), torch.tensor([-1]), torch.tensor([0.0, 1.0]), torch.zeros(2, 2)])
def test_sample_rejects_bad_labels(bad):
    with pytest.raises(ValueError, match="labels"):
        _model().sample(bad)


@pytest.mark.parametrize("steps,guidance", [(1, 1.0), (4, 1.0), (7, 2.5)])
def test_ddim_with_k_steps_calls_the_unet_exactly_k_times(steps, guidance):
    model = _model()
    calls = _count_unet_calls(model)
    model.sample(torch.tensor([0, 1]), sampler="ddim", sampling_steps=steps, guidance_scale=guidance)
    assert calls[0] == steps


def test_ddpm_sampler_runs_all_training_timesteps():
    model = _model()
    calls = _count_unet_calls(model)
    model.sample(torch.tensor([1]), sampler="ddpm")
    assert calls[0] == TINY["num_train_timesteps"]


def test_reverse_diffusion_matches_a_hand_written_ddim_loop():
    """Oracle: the deterministic DDIM update x_prev = sqrt(a_prev) x0 + sqrt(1 - a_prev) eps, in float64."""
    schedule = NoiseSchedule(20, "linear_beta", 1e-4, 0.02, clip_sample=False)
    alphas_cumprod = build_scheduler(schedule).alphas_cumprod.double()

    def predict_noise(x, t, labels):  # any smooth function of (x, t, label) will do
        return 0.1 * x + 0.01 * t[:, None, None, None] + 0.05 * labels[:, None, None, None]

    labels = torch.tensor([0, 2])
    result = reverse_diffusion(predict_noise, labels, shape=(1, 2, 2), schedule=schedule, null_label=3, seed=7,
                               sampler="ddim", steps=5)  # fmt: skip
    x = torch.randn((2, 1, 2, 2), generator=torch.Generator().manual_seed(7)).double()
    timesteps = [16, 12, 8, 4, 0]  # uniform skip T // k = 4; each step lands on the next timestep
    for t in timesteps:
        t_prev = t - 20 // 5
        eps = predict_noise(x, torch.full((2,), t), labels).double()
        a_t = alphas_cumprod[t]
        a_prev = alphas_cumprod[t_prev] if t_prev >= 0 else torch.tensor(1.0, dtype=torch.float64)
        x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    torch.testing.assert_close(result.double(), x, rtol=1e-4, atol=1e-4)


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match=r"model_config\.chanels: unknown key; did you mean 'channels'\?"):
        _model(chanels=[8, 16])
    with pytest.raises(ValueError, match="attention_levels"):
        _model(attention_levels=[False])
    with pytest.raises(ValueError, match="norm_num_groups"):
        _model(norm_num_groups=3)
    with pytest.raises(ValueError, match="sampling_steps"):
        _model(sampling_steps=41)
    with pytest.raises(ValueError, match="sampler"):
        _model(sampler="euler")
    with pytest.raises(ValueError, match="beta_schedule 'cosine_typo' is not a MONAI noise schedule"):
        _model(beta_schedule="cosine_typo")
    with pytest.raises(ValueError, match="beta_start and beta_end"):
        _model(beta_start=0.02, beta_end=0.01)
    with pytest.raises(ValueError, match="divisible by 4"):
        ConditionalDDPM.from_config({**TINY, "channels": [8, 8, 16], "attention_levels": [False] * 3},
                                    num_classes=3, image_shape=(1, 10, 10))  # fmt: skip
    with pytest.raises(ValueError, match="noise_multiplier"):
        _model(training={"dp": {"noise_multiplier": -1.0}})
    with pytest.raises(ValueError, match="ddpm sampling"):
        _model().sample(torch.tensor([0]), steps=3)


def test_checkpoint_round_trip_and_refusal_of_another_config(tmp_path):
    from medsyn.models.registry import load_generator

    model = _model(training={"steps": 3, "batch_size": 8})
    path = model.fit(_train_set(), tmp_path / "ddpm.pt", seed=1, progress=False)
    labels = torch.tensor([0, 1, 2])
    loaded = load_generator(path)
    assert isinstance(loaded, ConditionalDDPM)
    torch.testing.assert_close(loaded.sample(labels, seed=2), model.sample(labels, seed=2), rtol=0, atol=0)
    assert loaded.metadata["class_names"] == ["a", "b", "c"]
    assert len(loaded.history) == 3

    other = _model(training={"steps": 3, "batch_size": 8}, channels=[4, 16], norm_num_groups=4)
    with pytest.raises(ValueError, match="different ddpm config"):
        other.load_weights(load_checkpoint(path))
    with pytest.raises(ValueError, match="different ddpm config"):
        other.fit(_train_set(), path, progress=False)  # resuming with another config refuses too


def test_training_lowers_the_loss_and_moves_the_ema(tmp_path):
    model = _model(training={"steps": 30, "batch_size": 12}, learning_rate=2e-3)
    before = [p.clone() for p in model.ema.module.parameters()]
    model.fit(_train_set(), tmp_path / "ddpm.pt", progress=False)
    losses = [entry["loss"] for entry in model.history]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5
    assert any(not torch.equal(a, b) for a, b in zip(before, model.ema.module.parameters()))


def test_resume_reaches_the_state_of_an_uninterrupted_run(tmp_path):
    train = _train_set()
    uninterrupted = _model(training={"steps": 4, "batch_size": 8})
    uninterrupted.fit(train, tmp_path / "full.pt", seed=9, progress=False)

    _model(training={"steps": 2, "batch_size": 8}).fit(train, tmp_path / "split.pt", seed=9, progress=False)
    resumed = _model(training={"steps": 4, "batch_size": 8})
    resumed.fit(train, tmp_path / "split.pt", seed=9, progress=False)

    assert [h["loss"] for h in resumed.history] == pytest.approx([h["loss"] for h in uninterrupted.history], rel=1e-6)
    for a, b in zip(uninterrupted.network.state_dict().values(), resumed.network.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    for a, b in zip(uninterrupted.ema.module.parameters(), resumed.ema.module.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_dp_sgd_trains_the_whole_unet_and_reports_epsilon(tmp_path):
    train = _train_set(20)
    # sample rate 2/20 with seed 0: Poisson batch 7 is empty (it must still take a pure-noise step).
    model = _model(training={"steps": 7, "batch_size": 2, "dp": {"noise_multiplier": 1.0, "max_grad_norm": 1.0}})
    before = [p.clone() for p in model.network.parameters()]
    model.fit(train, tmp_path / "dp.pt", seed=0, progress=False)
    assert model.history[6] == {"loss": 0.0}  # the empty batch was stepped, not skipped
    dp = model.metadata["dp"]
    assert dp["delta"] == pytest.approx(1 / 20)
    assert math.isfinite(dp["epsilon"]) and dp["epsilon"] > 0
    assert model.metadata["batchnorm_replaced_by_groupnorm"] is False
    # every parameter moved: the noise reaches the whole U-Net, not one part
    assert all(not torch.equal(a, b) for a, b in zip(before, model.network.parameters()))
    stored = load_checkpoint(tmp_path / "dp.pt")["metadata"]["dp"]
    assert stored["epsilon"] == pytest.approx(dp["epsilon"])


def test_paper_default_size_matches_ho_et_al():
    with torch.device("meta"):  # no memory, no init time
        model = ConditionalDDPM(DDPMConfig(), num_classes=10, image_shape=(3, 32, 32))
    count = model.parameter_count()
    print(f"DDPM (Ho et al. 32x32 config) parameters: {count / 1e6:.2f}M")
    assert 35e6 < count < 37e6  # Ho et al. 2020 report 35.7M for their CIFAR-10 model

