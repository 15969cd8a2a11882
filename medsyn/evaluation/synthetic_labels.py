"""How many synthetic images of each class a protocol asks for, and which of them a regime takes.

    labels = labels_like([5, 5, 3], multiplier=2)      # int64 [26]: 10 x class 0, 10 x class 1, 6 x class 2
    index = first_per_class_index(labels, [5, 5, 3])   # the first 5, 5, 3 of each class, in their order

The one allocator of medsyn: a synthetic set keeps the class distribution of the real training split it is
compared with (paper 000 §4.1.4: "m times the real training size"); a balanced real split (per_class k,
paper 001 §3) therefore gives a balanced synthetic set. The m x regime takes the FIRST m * n_c images of
class c, so the 1x set is inside the 2x set, which is inside the 3x set.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["first_per_class_index", "images_needed", "labels_like"]


def _check_counts(class_counts: Sequence[int], name: str) -> list[int]:
    counts = [int(c) for c in class_counts]
    if not counts or any(c < 0 for c in counts) or sum(counts) == 0:
        raise ValueError(f"{name} must be non-negative per-class counts with at least one image, got {list(class_counts)}")
    return counts


def images_needed(class_counts: Sequence[int], multiplier: int) -> list[int]:
    """Synthetic images per class for ``multiplier`` x a set with ``class_counts``: multiplier * n_c."""
    if isinstance(multiplier, bool) or not isinstance(multiplier, int) or multiplier < 0:
        raise ValueError(f"multiplier must be an integer >= 0, got {multiplier!r}")
    return [multiplier * count for count in _check_counts(class_counts, "class_counts")]


def labels_like(class_counts: Sequence[int], multiplier: int = 1) -> torch.Tensor:
    """int64 [multiplier * sum(class_counts)]: ``multiplier`` x each class's count, sorted by class."""
    needed = images_needed(class_counts, multiplier)
    return torch.repeat_interleave(torch.arange(len(needed)), torch.tensor(needed, dtype=torch.int64))


def first_per_class_index(labels: torch.Tensor, counts: Sequence[int]) -> torch.Tensor:
    """int64 indices (ascending) of the first ``counts[c]`` entries of each class c in ``labels``."""
    index = torch.cat([torch.nonzero(labels == c).flatten()[: int(n)] for c, n in enumerate(counts)])
    return torch.sort(index).values
