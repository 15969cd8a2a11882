"""samples_into_store: a generator's samples go to an image store chunk by chunk, equal to its sample(),
reused while the checkpoint is unchanged, resampled when it changes."""

from __future__ import annotations

import os

import torch

from medsyn.data.image_set import ImageSet
from medsyn.data.stored_images import image_tensor
from medsyn.evaluation.sample_store import samples_into_store


class ChunkedGenerator:
    """Images that encode (seed, position), yielded 3 at a time; counts the chunks it made."""

    def __init__(self) -> None:
        self.chunks = 0

    def sample(self, labels, seed=0):
        return torch.cat(list(self.sample_batches(labels, seed=seed)))

    def sample_batches(self, labels, seed=0):
        generator = torch.Generator().manual_seed(seed)
        values = torch.rand(len(labels), 1, 4, 4, generator=generator)
        for start in range(0, len(labels), 3):
            self.chunks += 1
            yield values[start:start + 3]


def _train() -> ImageSet:
    return ImageSet(torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 0, 1]), ("a", "b"), "real")


def test_samples_are_stored_exactly_and_reused_until_the_checkpoint_changes(tmp_path):
    checkpoint = tmp_path / "run" / "checkpoint.pt"
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"weights v1")
    labels = torch.tensor([0, 1] * 5)
    generator = ChunkedGenerator()
    stored = samples_into_store(generator, labels, seed=7, train=_train(), run_dir=checkpoint.parent,
                                checkpoint=checkpoint, name="g seed 0")
    assert stored.stored and generator.chunks == 4
    assert torch.equal(image_tensor(stored.images), ChunkedGenerator().sample(labels, seed=7))
    assert torch.equal(stored.labels, labels) and stored.class_names == ("a", "b")

    again = samples_into_store(generator, labels, seed=7, train=_train(), run_dir=checkpoint.parent,
                               checkpoint=checkpoint, name="g seed 0")
    assert generator.chunks == 4 and torch.equal(image_tensor(again.images), image_tensor(stored.images))

    checkpoint.write_bytes(b"weights v2 (retrained)")
    os.utime(checkpoint, ns=(10**9, 10**9))
    samples_into_store(generator, labels, seed=7, train=_train(), run_dir=checkpoint.parent,
                       checkpoint=checkpoint, name="g seed 0")
    assert generator.chunks == 8  # resampled
    other_seed = samples_into_store(generator, labels, seed=8, train=_train(), run_dir=checkpoint.parent,
                                    checkpoint=checkpoint, name="g seed 1")
    assert torch.equal(image_tensor(other_seed.images), ChunkedGenerator().sample(labels, seed=8))
