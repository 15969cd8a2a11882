"""Training batches read by DataLoader workers (medsyn.training.batch_loader): the same batches (indices,
images bit for bit, labels) as read in process, for shuffled and Poisson orders (empty batches included),
for tensor and StoredImages sets; CVAE and classifier training bit-identical with 0 and 2 workers; a run
interrupted while the workers had read ahead resumes to the uninterrupted run; num_workers < 0 refused by
key path."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medsyn.config.generators import parse_generator_overrides
from medsyn.config.sections import ClassifierSection
from medsyn.config.strict import ConfigError, parse_section
from medsyn.data.image_set import ImageSet
from medsyn.data.store import build_store
from medsyn.data.stored_images import StoredImages
from medsyn.models.classifier_training import train_classifier
from medsyn.models.registry import build_generator
from medsyn.training.batch_loader import load_batches
from medsyn.training.batches import PoissonBatches, ShuffledBatches
from medsyn.training.loop import TrainingRun, run_training
from medsyn.training.settings import TrainingSettings, config_from_mapping

SIZE = 8


def _digits(count: int = 48, size: int = SIZE) -> ImageSet:
    """``count`` digits at ``size`` x ``size``, quantised to k/255 so a uint8 store holds them exactly."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = F.interpolate(torch.tensor(digits.images[:count], dtype=torch.float32)[:, None] / 16, size=size)
    images = torch.round(images.clamp(0, 1) * 255) / 255
    return ImageSet(images, torch.tensor(digits.target[:count]), tuple("0123456789"), "digits")


def _stored(data: ImageSet, tmp_path: Path) -> ImageSet:
    """``data`` with its images in an image store built under ``tmp_path`` (one source file)."""
    source = tmp_path / "source"
    source.mkdir(parents=True, exist_ok=True)
    pixels = (data.images.numpy() * 255).round().astype(np.uint8)
    np.save(source / "images.npy", pixels)
    build = build_store(
        kind="test_images", root=source, files=[source / "images.npy"], labels=data.labels.numpy(),
        class_names=data.class_names, image_shape=data.image_shape,
        decode=lambda i: pixels[i].astype(np.float32) / 255, options={"size": SIZE},
        item_files=np.zeros(len(data), dtype=np.int64), dtype="uint8", cache_dir=tmp_path / "cache", chunk_size=16,
    )
    stored = ImageSet(StoredImages.of_store(build.store), data.labels, data.class_names, "stored digits")
    assert torch.equal(stored.images[:], data.images)  # the store is exact: the two sets are the same images
    return stored


def _order(kind: str, size: int):
    return ShuffledBatches(size, 10, seed=3) if kind == "shuffled" else PoissonBatches(size, 0.03, seed=3)


def _read(data: ImageSet, kind: str, num_workers: int, count: int = 14):
    order = _order(kind, len(data))
    stream = load_batches(data.images, data.labels, (order.next() for _ in range(count)), num_workers=num_workers)
    with closing(stream):
        return list(stream)


@pytest.mark.parametrize("kind", ["shuffled", "poisson"])
@pytest.mark.parametrize("stored", [False, True], ids=["tensor", "stored"])
def test_two_workers_read_the_batches_of_the_seeded_order_bit_for_bit(tmp_path, kind, stored):
    data = _digits()
    data = _stored(data, tmp_path) if stored else data
    order = _order(kind, len(data))
    expected = [order.next() for _ in range(14)]
    in_process, workers = _read(data, kind, 0), _read(data, kind, 2)
    assert len(in_process) == len(workers) == 14
    for index, here, there in zip(expected, in_process, workers):
        assert torch.equal(here.index, index) and torch.equal(there.index, index)
        assert torch.equal(here.images, data.images[index]) and torch.equal(there.images, here.images)
        assert torch.equal(there.labels, data.labels[index]) and torch.equal(here.labels, there.labels)
        assert there.images.shape == (len(index), 1, SIZE, SIZE)
    if kind == "poisson":  # rate 0.03 over 48 images: some batches are empty, and they come through
        assert any(len(index) == 0 for index in expected) and any(len(index) > 1 for index in expected)


def test_reading_leaves_the_global_rng_alone():
    data = _digits(16)
    torch.manual_seed(7)
    expected = torch.rand(3)
    for workers in (0, 2):
        torch.manual_seed(7)
        _read(data, "shuffled", workers, count=3)
        assert torch.equal(torch.rand(3), expected), f"num_workers={workers}"


def _linear_problem(tmp_path: Path, name: str, **overrides):
    """A linear regression trained by run_training; returns (run, step, model)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(SIZE * SIZE, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)

    def step(images, labels, step_index):
        optimizer.zero_grad()
        noise = torch.randn(len(labels))  # draws from the global RNG, restored on resume
        loss = (model(images.flatten(1)).squeeze(1) + 0.01 * noise - labels.float() / 9).pow(2).sum()
        (loss / max(len(labels), 1)).backward()
        optimizer.step()
        return {"loss": loss.item(), "batch": float(len(labels))}

    arguments = {"model_name": "linear", "config": {}, "stateful": {"model": model, "optimizer": optimizer},
                 "checkpoint_path": tmp_path / f"{name}.pt", "steps": 12, "batch_size": 8, "seed": 1,
                 "progress": False, **overrides}
    return TrainingRun(**arguments), step, model


@pytest.mark.parametrize("poisson", [False, True], ids=["shuffled", "poisson"])
def test_run_training_with_workers_equals_the_in_process_loop(tmp_path, poisson):
    data = _stored(_digits(), tmp_path)
    run, step, model = _linear_problem(tmp_path, "workers", num_workers=2, poisson_sampling=poisson)
    history = run_training(run, data, step)
    # The loop of before the DataLoader: the seeded order read in process, one step per batch.
    _, reference_step, reference = _linear_problem(tmp_path, "reference")
    order = PoissonBatches(len(data), 8 / len(data), 1) if poisson else ShuffledBatches(len(data), 8, 1)
    torch.manual_seed(1)
    expected = []
    for step_index in range(12):
        index = order.next()
        expected.append(reference_step(data.images[index], data.labels[index], step_index))
    assert history == expected
    assert torch.equal(model.weight, reference.weight) and torch.equal(model.bias, reference.bias)


class _Interrupted(RuntimeError):
    pass


@pytest.mark.parametrize("poisson", [False, True], ids=["shuffled", "poisson"])
def test_a_run_interrupted_while_workers_read_ahead_resumes_to_the_uninterrupted_run(tmp_path, poisson):
    data = _digits()
    run, step, _ = _linear_problem(tmp_path, "interrupted", num_workers=2, checkpoint_every=4,
                                   poisson_sampling=poisson)

    def failing_step(images, labels, step_index):
        if step_index == 6:  # after the checkpoint at step 4; the workers have read batches 7.. already
            raise _Interrupted
        return step(images, labels, step_index)

    with pytest.raises(_Interrupted):
        run_training(run, data, failing_step)
    resumed_run, resumed_step, resumed = _linear_problem(tmp_path, "interrupted", num_workers=2,
                                                         checkpoint_every=4, poisson_sampling=poisson)
    history = run_training(resumed_run, data, resumed_step)
    straight_run, straight_step, straight = _linear_problem(tmp_path, "straight", poisson_sampling=poisson)
    assert history == run_training(straight_run, data, straight_step)
    assert torch.equal(resumed.weight, straight.weight) and torch.equal(resumed.bias, straight.bias)


def test_cvae_training_is_bit_identical_with_zero_and_two_workers(tmp_path):
    data = _stored(_digits(64, size=16), tmp_path)
    runs = []
    for workers in (0, 2):
        cvae = build_generator("cvae", num_classes=10, image_shape=(1, 16, 16), hidden_dims=[4, 8], latent_dim=4,
                               steps=8, batch_size=16, num_workers=workers)
        cvae.fit(data, tmp_path / f"cvae_{workers}.pt", seed=2, progress=False)
        runs.append(cvae)
    assert runs[0].history == runs[1].history and len(runs[0].history) == 8
    for (name, left), (_, right) in zip(runs[0].network.state_dict().items(), runs[1].network.state_dict().items()):
        assert torch.equal(left, right), name


def test_classifier_training_is_bit_identical_with_zero_and_two_workers(tmp_path):
    data = _stored(_digits(60, size=16), tmp_path)
    train, val = data.subset(range(44)), _digits(60, size=16).subset(range(44, 60))
    results = [train_classifier(train, val, arch="small_cnn", epochs=2, batch_size=16, lr=3e-3, seed=1,
                                augment=True, num_workers=workers) for workers in (0, 2)]
    (model_0, history_0), (model_2, history_2) = results
    assert history_0 == history_2 and len(history_0["per_epoch"]) == 2
    for left, right in zip(model_0.state_dict().values(), model_2.state_dict().values()):
        assert torch.equal(left, right)


def test_negative_num_workers_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"^training\.num_workers: must be an integer >= 0, got -1$"):
        config_from_mapping(TrainingSettings, {"num_workers": -1}, what="training")
    with pytest.raises(ConfigError, match=r"^models\.cvae\.config\.num_workers: must be an integer >= 0, got -2$"):
        parse_generator_overrides("cvae", {"num_workers": -2}, path="models.cvae.config")
    with pytest.raises(ConfigError, match=r"^utility\.classifier\.num_workers: must be >= 0, got -1$"):
        parse_section(ClassifierSection, {"num_workers": -1}, path="utility.classifier")
    with pytest.raises(ConfigError, match=r"^classifier\.num_workers: expected an integer, got 'two'$"):
        parse_section(ClassifierSection, {"num_workers": "two"}, path="classifier")
    assert parse_section(ClassifierSection, {"num_workers": 2}, path="c").settings()["num_workers"] == 2
    assert parse_generator_overrides("cvae", {"num_workers": 3}, path="m") == {"num_workers": 3}
    assert TrainingSettings().num_workers == ClassifierSection().num_workers == 0
    with pytest.raises(ValueError, match="num_workers"):
        load_batches(torch.zeros(1, 1, 2, 2), torch.zeros(1, dtype=torch.int64), [], num_workers=-1)
