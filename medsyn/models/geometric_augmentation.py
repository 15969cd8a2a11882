"""The "Geometric DA" transforms of paper 000 §4.1.4 (regimes Geometric DA and Combined DA): a random rotation
and random horizontal and vertical flips of every training image, drawn on the fly per batch.

    augmentation = GeometricAugmentation(max_rotation_degrees=15.0)          # the defaults below
    batch = geometric_augment(images, torch.Generator().manual_seed(0), augmentation)

Paper 000 §4.1.4 names the three affine transformations ("rotations, horizontal and vertical flips") but
gives no range or probability, and Appendix A none either; the defaults are medsyn's choice: an angle drawn
uniformly in [-15, 15] degrees (bilinear, zeros outside the image) and each flip with probability 0.5. The
config key is ``utility.classifier.geometric_da`` (``medsyn.config.sections.ClassifierSection``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["DEFAULT_GEOMETRIC_AUGMENTATION", "GeometricAugmentation", "geometric_augment"]


@dataclass(frozen=True)
class GeometricAugmentation:
    """Ranges of the Geometric DA transforms (defaults: medsyn's, paper 000 §4.1.4 gives none).

    max_rotation_degrees: the angle is uniform in [-max, max], a number in [0, 180] (0: no rotation);
    hflip_probability, vflip_probability: probability in [0, 1] of mirroring left-right / top-bottom.
    A bad value is a ValueError naming the field and the range expected.
    """

    max_rotation_degrees: float = 15.0
    hflip_probability: float = 0.5
    vflip_probability: float = 0.5

    def __post_init__(self) -> None:
        _check_number(self.max_rotation_degrees, "max_rotation_degrees", 0.0, 180.0)
        _check_number(self.hflip_probability, "hflip_probability", 0.0, 1.0)
        _check_number(self.vflip_probability, "vflip_probability", 0.0, 1.0)

    def to_dict(self) -> dict[str, float]:
        return {key: float(value) for key, value in asdict(self).items()}

    @classmethod
    def from_value(cls, value: Any, name: str = "geometric_da") -> GeometricAugmentation:
        """``value`` as settings: a GeometricAugmentation, a mapping of its fields (missing ones take the
        defaults), or None (the defaults); anything else, or an unknown key, a ValueError naming ``name``."""
        if value is None:
            return DEFAULT_GEOMETRIC_AUGMENTATION
        if isinstance(value, cls):
            return value
        if not isinstance(value, dict):
            raise ValueError(f"{name}: expected a mapping of {sorted(_FIELDS)}, got {value!r}")
        unknown = sorted(set(value) - _FIELDS)
        if unknown:
            raise ValueError(f"{name}: unknown key(s) {unknown}; known keys: {sorted(_FIELDS)}")
        try:
            return cls(**value)
        except ValueError as error:
            raise ValueError(f"{name}.{error}") from None


def _check_number(value: Any, name: str, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValueError(f"{name}: expected a number in [{low:g}, {high:g}], got {value!r}")


_FIELDS = {"max_rotation_degrees", "hflip_probability", "vflip_probability"}
DEFAULT_GEOMETRIC_AUGMENTATION = GeometricAugmentation()


def geometric_augment(
    images: torch.Tensor,
    generator: torch.Generator,
    augmentation: GeometricAugmentation = DEFAULT_GEOMETRIC_AUGMENTATION,
) -> torch.Tensor:
    """A random rotation and random flips per image, for the whole batch at once.

    images: float [N,C,H,W] in [0,1] -> float [N,C,H,W] in [0,1] (bilinear rotation, zeros outside).
    ``generator`` (CPU) decides every random draw, so a seeded generator gives the same batch again; the draws
    are the same whatever the ranges (three uniform numbers per image).
    """
    count = images.shape[0]
    angles = (torch.rand(count, generator=generator) * 2 - 1) * math.radians(augmentation.max_rotation_degrees)
    hflip = torch.rand(count, generator=generator) < augmentation.hflip_probability
    vflip = torch.rand(count, generator=generator) < augmentation.vflip_probability
    # A flip is a sign on one axis of the sampling grid, so rotation and flips are one affine map per image.
    x_sign = 1.0 - 2.0 * hflip.to(images.dtype)
    y_sign = 1.0 - 2.0 * vflip.to(images.dtype)
    cos, sin = torch.cos(angles).to(images.dtype), torch.sin(angles).to(images.dtype)
    theta = torch.zeros(count, 2, 3, dtype=images.dtype)
    theta[:, 0, 0] = cos * x_sign
    theta[:, 0, 1] = -sin * y_sign
    theta[:, 1, 0] = sin * x_sign
    theta[:, 1, 1] = cos * y_sign
    theta = theta.to(images.device)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    rotated = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return rotated.clamp_(0.0, 1.0)
