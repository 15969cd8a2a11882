"""The read side: ImageStore.read (batch gather in the order asked), StoreView as a Dataset (the same
batches with DataLoader workers as without), pickling without the memory map, to_image_set equal to the
ImageSet of the decoded images."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from medsyn.data.image_set import ImageSet
from medsyn.data.store import StoreChangedError, StoreView, open_store, to_image_set


def _decoded(source, indices):
    return torch.from_numpy(np.stack([source.decoded(i) for i in indices]))


def test_read_returns_the_images_in_the_order_asked_with_repeats(source):
    store = source.build().store
    for indices in ([5, 1, 5, 0], [9], list(range(10))[::-1], np.array([3, 2], dtype=np.int32), torch.tensor([7, 7])):
        expected = [int(i) for i in indices]
        read = store.read(indices)
        assert read.dtype == torch.float32 and torch.equal(read, _decoded(source, expected))
    assert store.read([]).shape == (0, 3, 16, 16)


def test_read_refuses_indices_outside_the_store(source):
    store = source.build().store
    with pytest.raises(IndexError, match=r"index 10 is outside \[0, 10\)"):
        store.read([0, 10])
    with pytest.raises(IndexError, match=r"index -1 is outside"):
        store.read([-1])
    with pytest.raises(TypeError, match="1-D sequence of integers"):
        store.read([0.5])


def test_to_image_set_equals_the_in_memory_image_set_of_the_decoded_images(source):
    store = source.build().store
    expected = ImageSet(_decoded(source, range(10)), torch.tensor(source.labels), source.class_names)
    materialised = to_image_set(StoreView(store), source="fake")
    assert torch.equal(materialised.images, expected.images) and torch.equal(materialised.labels, expected.labels)
    assert materialised.class_names == expected.class_names and materialised.source == "fake"
    subset = to_image_set(StoreView(store).subset([8, 2, 5]))
    assert torch.equal(subset.images, expected.subset([8, 2, 5]).images)
    assert torch.equal(subset.labels, expected.subset([8, 2, 5]).labels)


def test_a_view_is_a_dataset_of_image_and_label_with_its_own_labels(source):
    store = source.build().store
    view = StoreView(store, indices=[4, 1, 4], labels=[1, 1, 0])
    assert len(view) == 3 and view.class_counts() == [1, 2]
    image, label = view[2]
    assert torch.equal(image, _decoded(source, [4])[0]) and label.dtype == torch.int64 and int(label) == 0
    assert torch.equal(view[-1][0], image)
    with pytest.raises(IndexError):
        view[3]
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        StoreView(store, indices=[0], labels=[2])
    assert torch.equal(view.subset([2, 0]).indices, torch.tensor([4, 4]))
    assert torch.equal(view.subset([2, 0]).labels, torch.tensor([0, 1]))


def _batches(view, workers):
    loader = DataLoader(view, batch_size=3, shuffle=True, num_workers=workers,
                        generator=torch.Generator().manual_seed(0))
    return list(loader)


def test_dataloader_with_two_workers_yields_the_same_batches_as_without(source):
    view = StoreView(source.build().store).subset([9, 0, 3, 4, 5, 6, 7, 8, 1])
    without = _batches(view, 0)
    with_workers = _batches(view, 2)
    assert len(without) == len(with_workers) == 3
    for (images, labels), (worker_images, worker_labels) in zip(without, with_workers):
        assert images.shape == (3, 3, 16, 16) and torch.equal(images, worker_images)
        assert torch.equal(labels, worker_labels)
    every = torch.cat([images for images, _ in without])
    assert sorted(every.flatten(1).sum(1).tolist()) == sorted(_decoded(source, view.indices).flatten(1).sum(1).tolist())


def test_a_pickled_view_carries_no_memory_map_and_maps_the_file_again(source):
    store = source.build().store
    view = StoreView(store)
    payload = pickle.dumps(view)
    assert len(payload) < 10 * 3 * 16 * 16  # labels, indices and manifest, not the images
    copy = pickle.loads(payload)
    assert copy.store._images is None
    assert torch.equal(copy.read([1, 2]), view.read([1, 2]))


def test_a_store_rebuilt_after_it_was_opened_is_not_read_silently(source):
    payload = pickle.dumps(StoreView(source.build().store))
    source.rewrite(0, np.zeros((3, 16, 16), dtype=np.uint8))
    source.build()
    with pytest.raises(StoreChangedError, match="was rebuilt after it was opened"):
        pickle.loads(payload).read([0])


def test_open_store_by_path(source):
    path = source.build().store.path
    store = open_store(path)
    assert len(store) == 10 and torch.equal(store.read([3]), _decoded(source, [3]))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_store(path.parent / "missing")
