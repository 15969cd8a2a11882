"""The one synthetic-label allocator: per-class counts like the real split, nested m x subsets."""

import pytest
import torch

from medsyn.evaluation.synthetic_labels import first_per_class_index, images_needed, labels_like


def test_labels_like_keeps_the_class_distribution_times_the_multiplier():
    labels = labels_like([5, 0, 3], multiplier=2)
    assert labels.dtype == torch.int64
    assert torch.bincount(labels, minlength=3).tolist() == [10, 0, 6]
    assert torch.equal(labels, torch.sort(labels).values)  # sorted by class
    assert torch.equal(labels_like([2, 2]), torch.tensor([0, 0, 1, 1]))


def test_a_balanced_split_gives_a_balanced_set():
    assert torch.bincount(labels_like([4] * 10)).tolist() == [4] * 10


def test_first_per_class_index_takes_the_first_images_of_each_class_in_order():
    labels = torch.tensor([2, 0, 1, 0, 2, 0, 1])
    index = first_per_class_index(labels, [2, 1, 1])
    assert index.tolist() == [0, 1, 2, 3]  # class 0 at 1, 3; class 1 at 2; class 2 at 0
    one = first_per_class_index(labels_like([3, 3], 3), [3, 3])
    two = first_per_class_index(labels_like([3, 3], 3), [6, 6])
    assert set(one.tolist()) <= set(two.tolist())  # the 1x set is inside the 2x set


@pytest.mark.parametrize("counts, multiplier", [([], 1), ([0, 0], 1), ([-1, 2], 1), ([2], -1), ([2], True)])
def test_bad_counts_are_refused(counts, multiplier):
    with pytest.raises(ValueError):
        images_needed(counts, multiplier)
