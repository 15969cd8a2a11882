"""``sample_batches``: every registered generator streams the very images ``sample`` returns, in its own chunk
sizes, validating its arguments when called and generating one chunk per ``next()``."""

from __future__ import annotations

import inspect

import pytest
import torch

import medsyn.models.cvae as cvae_module
import medsyn.models.diffusion_sampling as sampling_module
import medsyn.models.ldm as ldm_module
from medsyn.models.base import ConditionalGenerator, rechunk
from medsyn.models.registry import GENERATORS, build_generator

SHAPES = {"cvae": (1, 16, 16), "stylegan2": (1, 16, 16), "ddpm": (1, 8, 8), "ldm": (1, 8, 8)}
TINY = {
    "cvae": {"hidden_dims": [4, 8], "latent_dim": 8},
    "stylegan2": {
        "z_dim": 16, "w_dim": 16, "embed_dim": 16, "mapping_layers": 1, "channel_base": 64, "channel_max": 8,
        "device": "cpu",
    },
    "ddpm": {
        "channels": [8, 16], "attention_levels": [False, False], "num_res_blocks": 1, "norm_num_groups": 4,
        "num_head_channels": 8, "num_train_timesteps": 6, "sampler": "ddim", "sampling_steps": 2,
    },
    "ldm": {
        "autoencoder_channels": [8, 8], "autoencoder_attention_levels": [False, False],
        "autoencoder_num_res_blocks": 1, "autoencoder_norm_num_groups": 4, "latent_channels": 2,
        "channels": [8, 16], "attention_levels": [False, True], "num_res_blocks": 1, "num_head_channels": 8,
        "norm_num_groups": 4, "class_embedding_dim": 8, "num_train_timesteps": 6, "sampler": "ddim",
        "sampling_steps": 2,
    },
}  # fmt: skip
# Small chunks, so a handful of images spans several; the LDM's decode chunks straddle its denoising chunks.
SMALL_CHUNKS = {"cvae": 4, "diffusion": 4, "decode": 3}
OVERRIDES = {
    "cvae": [{}],
    "stylegan2": [{}, {"batch_size": 3}, {"batch_size": 4, "truncation_psi": 0.6}, {"batch_size": 1}],
    "ddpm": [{}, {"sampling_steps": 1, "eta": 0.5}, {"guidance_scale": 2.0}, {"sampler": "ddpm"}],
    "ldm": [{}, {"sampling_steps": 1, "eta": 0.5}, {"guidance_scale": 2.0}, {"sampler": "ddpm"}],
}
CASES = [(name, overrides) for name in GENERATORS for overrides in OVERRIDES[name]]


def _randomise_zero_weights(module: torch.nn.Module) -> None:
    """MONAI zero-initialises output layers (an untrained U-Net predicts 0): make the images depend on x_t."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        for parameter in module.parameters():
            if parameter.ndim > 1 and not parameter.any():
                torch.nn.init.normal_(parameter, std=0.1)


@pytest.fixture(scope="module")
def models():
    built = {}
    for name in GENERATORS:
        model = build_generator(name, num_classes=3, image_shape=SHAPES[name], **TINY[name])
        if name in ("ddpm", "ldm"):
            _randomise_zero_weights(model.ema.module)
        built[name] = model
    return built


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(cvae_module, "SAMPLE_CHUNK", SMALL_CHUNKS["cvae"])
    monkeypatch.setattr(sampling_module, "SAMPLE_CHUNK", SMALL_CHUNKS["diffusion"])
    monkeypatch.setattr(ldm_module, "DECODE_CHUNK", SMALL_CHUNKS["decode"])


def _chunk_size(name: str, overrides: dict) -> int:
    if name == "stylegan2":
        return overrides.get("batch_size", 64)
    return {"cvae": cvae_module.SAMPLE_CHUNK, "ddpm": sampling_module.SAMPLE_CHUNK, "ldm": ldm_module.DECODE_CHUNK}[name]


def _labels(n: int) -> torch.Tensor:
    return torch.randint(3, (n,), generator=torch.Generator().manual_seed(n))


def _check_chunks(batches: list[torch.Tensor], n: int, size: int, image_shape) -> None:
    assert [len(batch) for batch in batches] == [min(size, n - start) for start in range(0, n, size)]
    for batch in batches:
        assert batch.dtype == torch.float32 and tuple(batch.shape[1:]) == image_shape
        assert not batch.requires_grad and batch.device.type == "cpu"


@pytest.mark.parametrize("name, overrides", CASES)
@pytest.mark.parametrize("n", [0, 1, 10])
def test_the_chunks_are_sample_split_in_the_models_chunk_size(models, small_chunks, name, overrides, n):
    model = models[name]
    labels = _labels(n)
    batches = list(model.sample_batches(labels, seed=5, **overrides))
    _check_chunks(batches, n, _chunk_size(name, overrides), model.image_shape)
    images = model.sample(labels, seed=5, **overrides)
    assert images.dtype == torch.float32 and images.shape == (n, *model.image_shape)
    joined = torch.cat(batches) if batches else torch.zeros(0, *model.image_shape)
    assert torch.equal(joined, images)


@pytest.mark.parametrize(
    "name, overrides, n",
    [("cvae", {}, 300), ("stylegan2", {"batch_size": 32}, 70), ("stylegan2", {}, 70), ("ddpm", {}, 260),
     ("ldm", {}, 260)],
)  # fmt: skip
def test_the_real_chunk_sizes_with_more_than_one_chunk(models, name, overrides, n):
    model = models[name]
    labels = _labels(n)
    if name in ("ddpm", "ldm"):
        overrides = {**overrides, "sampling_steps": 1}
    batches = list(model.sample_batches(labels, seed=1, **overrides))
    _check_chunks(batches, n, _chunk_size(name, overrides), model.image_shape)
    assert len(batches) > 1
    assert torch.equal(torch.cat(batches), model.sample(labels, seed=1, **overrides))


def test_ldm_decodes_the_denoised_latents_in_decode_chunks_across_denoising_chunks(models, small_chunks):
    """The streamed decode is the decode of all latents split by DECODE_CHUNK (4-latent denoising chunks,
    3-latent decode chunks: most decode chunks take latents from two denoising chunks)."""
    model, labels = models["ldm"], _labels(10)
    latents = sampling_module.sample_in_chunks(
        model.ema.module, labels, shape=model.latent_shape, schedule=model.config.schedule(),
        sampling=model.sampling, null_label=model.null_label, seed=2,
    )  # fmt: skip
    expected = torch.cat([model.codec.decode(chunk) for chunk in latents.split(SMALL_CHUNKS["decode"])])
    assert torch.equal(torch.cat(list(model.sample_batches(labels, seed=2))), expected)


@pytest.mark.parametrize(
    "name, overrides",
    [("cvae", {}), ("stylegan2", {"truncation_psi": 0.5}), ("ddpm", {"guidance_scale": 2.0}), ("ldm", {})],
)
def test_iterators_interleaved_give_what_each_gives_alone(models, small_chunks, name, overrides):
    model = models[name]
    first, second = _labels(9), _labels(7)
    alone = (list(model.sample_batches(first, seed=1, **overrides)),
             list(model.sample_batches(second, seed=2, **overrides)))  # fmt: skip
    a, b = model.sample_batches(first, seed=1, **overrides), model.sample_batches(second, seed=2, **overrides)
    interleaved: tuple[list, list] = ([], [])
    iterators = [a, b]
    while iterators:  # one chunk of each in turn (zip would drop a chunk of the longer one)
        for iterator in list(iterators):
            chunk = next(iterator, None)
            if chunk is None:
                iterators.remove(iterator)
            else:
                interleaved[0 if iterator is a else 1].append(chunk)
    for mine, reference in zip(interleaved, alone):
        assert len(mine) == len(reference) and all(map(torch.equal, mine, reference))


def _counter(module: torch.nn.Module) -> tuple[list[int], torch.utils.hooks.RemovableHandle]:
    calls = [0]
    handle = module.register_forward_hook(lambda *args: calls.__setitem__(0, calls[0] + 1))
    return calls, handle


def _generating_module(model, name: str) -> torch.nn.Module:
    return {"cvae": lambda: model.network.decoder, "stylegan2": lambda: model.G_ema.synthesis,
            "ddpm": lambda: model.ema.module.unet, "ldm": lambda: model.ema.module.unet}[name]()  # fmt: skip


@pytest.mark.parametrize("name", list(GENERATORS))
def test_images_are_made_one_chunk_per_next_and_grad_mode_is_left_alone(models, small_chunks, name):
    model = models[name]
    overrides = {"batch_size": 4} if name == "stylegan2" else {}
    calls, handle = _counter(_generating_module(model, name))
    try:
        batches = model.sample_batches(_labels(10), seed=0, **overrides)
        assert calls[0] == 0  # nothing generated before the first next()
        next(batches)
        assert torch.is_grad_enabled()  # the generator's no_grad does not leak into the caller
        per_chunk = model.sampling.sampling_steps if name in ("ddpm", "ldm") else 1  # U-Net calls per chunk
        assert calls[0] == per_chunk  # one chunk (the LDM's first 3 images need only its first 4 latents)
        rest = list(batches)
        total_chunks = 1 + len(rest) if name != "ldm" else -(-10 // SMALL_CHUNKS["diffusion"])
        assert calls[0] == per_chunk * total_chunks
    finally:
        handle.remove()


@pytest.mark.parametrize("name", list(GENERATORS))
def test_streaming_leaves_the_global_rng_alone(models, small_chunks, name):
    state = torch.get_rng_state()
    overrides = {"truncation_psi": 0.7, "batch_size": 4} if name == "stylegan2" else {}
    for _ in models[name].sample_batches(_labels(6), seed=3, **overrides):
        assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(torch.get_rng_state(), state)


BAD_CALLS = [
    (name, {"labels": labels}, "labels")
    for name in GENERATORS
    for labels in (torch.tensor([0, 3]), torch.tensor([-1]), torch.tensor([0.5]), torch.zeros(2, 2, dtype=torch.int64))
] + [
    ("stylegan2", {"truncation_psi": 0.0}, "truncation_psi"),
    ("stylegan2", {"batch_size": 0}, "batch_size"),
    ("stylegan2", {"batch_size": 2.5}, "batch_size"),
    ("cvae", {"guidance_scale": 2.0}, "guidance_scale"),
] + [
    (name, overrides, key)
    for name in ("ddpm", "ldm")
    for overrides, key in (
        ({"sampler": "euler"}, "sampler"),
        ({"sampling_steps": 0}, "sampling_steps"),
        ({"sampling_steps": 7}, "ddim steps"),  # > num_train_timesteps: checked before any chunk, even N = 0
        ({"eta": -1.0}, "eta"),
        ({"guidance_scale": -1.0}, "guidance_scale"),
        ({"temperature": 1.0}, "temperature"),
    )
]  # fmt: skip


@pytest.mark.parametrize("name, arguments, key", BAD_CALLS)
@pytest.mark.parametrize("n", [0, 2])
def test_bad_arguments_raise_when_sample_batches_is_called(models, name, arguments, key, n):
    arguments = dict(arguments)
    labels = arguments.pop("labels", _labels(n))
    with pytest.raises((ValueError, TypeError), match=key):
        model = models[name]
        model.sample_batches(labels, seed=0, **arguments)  # no next(): validation is eager
    with pytest.raises((ValueError, TypeError), match=key):
        model.sample(labels, seed=0, **arguments)


@pytest.mark.parametrize("name", list(GENERATORS))
def test_every_generator_offers_sample_batches_with_samples_keywords(models, name):
    model = models[name]
    assert isinstance(model, ConditionalGenerator)
    sample = inspect.signature(model.sample).parameters
    batches = inspect.signature(model.sample_batches).parameters
    assert list(sample) == list(batches)
    assert [(p.kind, p.default) for p in sample.values()] == [(p.kind, p.default) for p in batches.values()]


@pytest.mark.parametrize("sizes, size", [([], 3), ([0, 0], 2), ([4, 4, 1], 4), ([5, 1, 0, 7, 2], 3), ([2, 2], 5)])
def test_rechunk_gives_the_split_of_the_concatenation(sizes, size):
    rows = torch.arange(sum(sizes) * 2, dtype=torch.float32).view(-1, 2)
    batches = list(rows.split(sizes)) if sizes else []
    chunks = list(rechunk(iter(batches), size))
    expected = list(rows.split(size)) if len(rows) else []
    assert len(chunks) == len(expected) and all(map(torch.equal, chunks, expected))
