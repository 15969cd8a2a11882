"""Geometric DA settings (paper 000 §4.1.4 names rotations and flips; the ranges are medsyn's, configurable)."""

from __future__ import annotations

import pytest
import torch

from medsyn.data.image_set import ImageSet
from medsyn.models.classifier_training import train_classifier
from medsyn.models.geometric_augmentation import (
    DEFAULT_GEOMETRIC_AUGMENTATION,
    GeometricAugmentation,
    geometric_augment,
)


def test_defaults_are_the_documented_ranges():
    assert DEFAULT_GEOMETRIC_AUGMENTATION.to_dict() == {
        "max_rotation_degrees": 15.0, "hflip_probability": 0.5, "vflip_probability": 0.5}


def test_zero_ranges_leave_images_unchanged_and_full_flips_always_flip():
    images = torch.rand(8, 2, 9, 7)
    none = GeometricAugmentation(max_rotation_degrees=0, hflip_probability=0, vflip_probability=0)
    torch.testing.assert_close(geometric_augment(images, torch.Generator().manual_seed(0), none), images)
    always = GeometricAugmentation(max_rotation_degrees=0, hflip_probability=1, vflip_probability=0)
    torch.testing.assert_close(geometric_augment(images, torch.Generator().manual_seed(0), always), images.flip(-1))


def test_rotation_range_bounds_the_angle():
    # A bright dot off-centre: its angle about the centre moves by at most max_rotation_degrees.
    image = torch.zeros(1, 1, 33, 33)
    image[0, 0, 16, 28] = 1.0
    only_rotation = GeometricAugmentation(max_rotation_degrees=10, hflip_probability=0, vflip_probability=0)
    out = geometric_augment(image.repeat(200, 1, 1, 1), torch.Generator().manual_seed(1), only_rotation)
    rows, cols = torch.meshgrid(torch.arange(33.0), torch.arange(33.0), indexing="ij")
    mass = out[:, 0].sum(dim=(1, 2))
    y = (out[:, 0] * rows).sum(dim=(1, 2)) / mass - 16
    x = (out[:, 0] * cols).sum(dim=(1, 2)) / mass - 16
    angles = torch.rad2deg(torch.atan2(y, x)).abs()
    assert angles.max() <= 10.5 and angles.max() > 8  # the range is used, and not exceeded


@pytest.mark.parametrize(
    "value, match",
    [
        ({"max_rotation_degrees": -1}, r"^geometric_da\.max_rotation_degrees: expected a number in \[0, 180\]"),
        ({"hflip_probability": 1.5}, r"^geometric_da\.hflip_probability: expected a number in \[0, 1\]"),
        ({"vflip_probability": True}, r"^geometric_da\.vflip_probability: expected a number in \[0, 1\]"),
        ({"rotation": 5}, r"^geometric_da: unknown key\(s\) \['rotation'\]"),
        (3, r"^geometric_da: expected a mapping"),
    ],
)
def test_bad_values_are_refused(value, match):
    with pytest.raises(ValueError, match=match):
        GeometricAugmentation.from_value(value)


def test_train_classifier_uses_and_records_the_ranges():
    generator = torch.Generator().manual_seed(0)
    train = ImageSet(torch.rand(16, 1, 8, 8, generator=generator), torch.arange(16) % 2, ("a", "b"), "train")
    val = ImageSet(torch.rand(6, 1, 8, 8, generator=generator), torch.arange(6) % 2, ("a", "b"), "val")
    identity = {"max_rotation_degrees": 0.0, "hflip_probability": 0.0, "vflip_probability": 0.0}
    plain, _ = train_classifier(train, val, arch="small_cnn", epochs=2, batch_size=4, seed=3)
    unchanged, history = train_classifier(train, val, arch="small_cnn", epochs=2, batch_size=4, seed=3, augment=True,
                                          geometric_da=identity)
    assert history["geometric_da"] == identity
    for a, b in zip(plain.state_dict().values(), unchanged.state_dict().values()):
        torch.testing.assert_close(a, b)  # identity transforms train the same network as no augmentation
    flipped, history = train_classifier(train, val, arch="small_cnn", epochs=2, batch_size=4, seed=3, augment=True,
                                        geometric_da={"hflip_probability": 1.0})
    assert history["geometric_da"]["hflip_probability"] == 1.0
    assert any(not torch.allclose(a, b) for a, b in zip(plain.state_dict().values(), flipped.state_dict().values()))
    with pytest.raises(ValueError, match=r"geometric_da\.hflip_probability"):
        train_classifier(train, val, arch="small_cnn", epochs=1, augment=True, geometric_da={"hflip_probability": 2})
