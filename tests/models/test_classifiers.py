"""Downstream classifiers (paper 000 App. A): architecture, parameter counts, hyper-parameters, bad input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medsyn.models.classifiers import (
    CLASSIFIER_HYPERPARAMETERS,
    CLASSIFIERS,
    VGG16Classifier,
    build_classifier,
    build_vgg16_classifier,
    classifier_hyperparameters,
)


@pytest.mark.parametrize("arch", ["small_cnn", "cnn4", "cnn3", "densenet121"])
@pytest.mark.parametrize("image_shape", [(1, 32, 32), (3, 40, 36)])
def test_logits_shape(arch, image_shape):
    torch.manual_seed(0)
    model = build_classifier(arch, num_classes=7, image_shape=image_shape).eval()
    with torch.no_grad():
        logits = model(torch.rand(2, *image_shape))
    assert logits.shape == (2, 7)
    assert torch.isfinite(logits).all()


def test_vgg16_matches_torchvision_parameter_count():
    # torchvision.models.vgg16(num_classes=1000) has 138,357,544 parameters (its model card); built on the
    # meta device, so no memory is allocated for the 134M weights.
    with torch.device("meta"):
        model = build_classifier("vgg16", num_classes=1000, image_shape=(3, 224, 224))
        logits = model(torch.empty(2, 1 * 3, 224, 224))
        grey = build_classifier("vgg16", num_classes=8, image_shape=(1, 32, 32))
        grey_logits = grey(torch.empty(2, 1, 32, 32))
    assert sum(p.numel() for p in model.parameters()) == 138_357_544
    assert logits.shape == (2, 1000)
    assert grey_logits.shape == (2, 8)
    assert grey.features[0].in_channels == 1
    assert sum(isinstance(m, nn.Conv2d) for m in grey.modules()) == 13
    assert sum(isinstance(m, nn.Linear) for m in grey.modules()) == 3


def test_vgg16_classifier_keeps_torchvision_state_dict_keys():
    # checkpoints hold state dicts: the keys are torchvision's vgg16 ones (13 convs in features, 3 linears)
    with torch.device("meta"):
        model = build_classifier("vgg16", num_classes=4, image_shape=(1, 32, 32))
    convs = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    expected = [f"features.{i}.{p}" for i in convs for p in ("weight", "bias")]
    expected += [f"classifier.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias")]
    assert list(model.state_dict()) == expected
    assert isinstance(model, VGG16Classifier) and CLASSIFIERS["vgg16"] is build_vgg16_classifier


def test_vgg16_classifier_forward_is_its_layer_list():
    # one nn.Sequential: what DeepFool's sequential engine reads is what forward runs, torchvision's formula
    torch.manual_seed(0)
    model = VGG16Classifier(num_classes=3, in_channels=1, classifier_width=8).eval()
    images = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        expected = model.classifier(torch.flatten(model.avgpool(model.features(images)), 1))
        assert torch.equal(model(images), expected)
    assert isinstance(model, nn.Sequential) and list(dict(model.named_children())) == [
        "features", "avgpool", "flatten", "classifier"
    ]


def test_densenet121_is_monai_with_torchvision_parameter_count():
    from monai.networks.nets import DenseNet121

    with torch.device("meta"):
        model = build_classifier("densenet121", num_classes=1000, image_shape=(3, 224, 224))
    assert isinstance(model, DenseNet121)
    # torchvision.models.densenet121 has 7,978,856 parameters; MONAI's 2-d DenseNet121 is the same network.
    assert sum(p.numel() for p in model.parameters()) == 7_978_856


@pytest.mark.parametrize("arch, maps", [("cnn4", [8, 16, 32, 64]), ("cnn3", [16, 32, 64])])
def test_plain_cnns_follow_appendix_a(arch, maps):
    model = build_classifier(arch, num_classes=5, image_shape=(3, 64, 64))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    pools = [m for m in model.modules() if isinstance(m, nn.MaxPool2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [c.out_channels for c in convs] == maps
    assert convs[0].in_channels == 3
    assert all(c.kernel_size == (3, 3) and c.stride == (1, 1) and c.padding == (1, 1) for c in convs)
    assert len(pools) == len(convs) and all(p.kernel_size == 2 for p in pools)
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == len(convs) + 1
    assert len(linears) == 2 and linears[-1].out_features == 5
    side = 64 // 2 ** len(convs)
    assert linears[0].in_features == maps[-1] * side * side


def test_paper_hyperparameters_in_one_place():
    assert set(CLASSIFIER_HYPERPARAMETERS) == set(CLASSIFIERS)
    vgg, dense, cnn4, cnn3 = (classifier_hyperparameters(n) for n in ("vgg16", "densenet121", "cnn4", "cnn3"))
    assert (vgg.lr, vgg.batch_size, vgg.epochs) == (1e-4, 64, 30)
    assert (dense.lr, dense.batch_size, dense.epochs) == (1e-3, 64, 30)
    assert (cnn4.lr, cnn4.batch_size, cnn4.epochs) == (1e-3, 32, 30)
    assert (cnn3.lr, cnn3.batch_size, cnn3.epochs) == (1e-3, 32, 30)
    assert "App. A" in vgg.source


def test_same_seed_same_initial_weights():
    torch.manual_seed(3)
    a = build_classifier("cnn4", num_classes=3, image_shape=(1, 32, 32))
    torch.manual_seed(3)
    b = build_classifier("cnn4", num_classes=3, image_shape=(1, 32, 32))
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize(
    "arch, kwargs, match",
    [
        ("resnet", {"num_classes": 3, "image_shape": (1, 32, 32)}, "unknown classifier arch 'resnet'"),
        ("cnn4", {"num_classes": 3, "image_shape": (1, 8, 8)}, "needs H and W >= 16"),
        ("vgg16", {"num_classes": 3, "image_shape": (1, 16, 16)}, "needs H and W >= 32"),
        ("cnn3", {"num_classes": 1, "image_shape": (1, 32, 32)}, "num_classes"),
        ("small_cnn", {"num_classes": 3, "image_shape": (32, 32)}, "image_shape"),
    ],
)
def test_bad_input(arch, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_classifier(arch, **kwargs)
    if arch == "resnet":
        with pytest.raises(ValueError, match="unknown classifier arch"):
            classifier_hyperparameters(arch)
