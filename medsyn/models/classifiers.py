"""Downstream classifiers for the utility and robustness protocol (paper 000 §4.1.4-4.1.5, Appendix A).

    model = build_classifier("cnn4", num_classes=4, image_shape=(3, 64, 64))
    hyper = CLASSIFIER_HYPERPARAMETERS["cnn4"]          # lr 1e-3, batch 32, 30 epochs (Appendix A)

Registry (name -> builder), every builder takes ``num_classes`` and ``image_shape=(C, H, W)`` and returns
an ``nn.Module`` mapping float [N,C,H,W] in [0,1] to logits [N, num_classes]:

- ``small_cnn``: medsyn's fast default for the 32x32 demo (not from the paper).
- ``cnn4``: Corn (Appendix A): 4 conv 3x3 / stride 1 / padding 1, 8 maps doubling each layer
  (8, 16, 32, 64), ReLU, 2x2 max-pooling halving the size after every conv, then two fully connected layers.
- ``cnn3``: PlantVillage (Appendix A): the same with 3 conv layers and twice the maps (16, 32, 64).
- ``vgg16``: Kvasir (Appendix A): VGG16 (configuration "D", Simonyan & Zisserman 2015) trained from scratch,
  layer for layer torchvision's ``vgg16`` (no batch norm) with ``in_channels`` taken from the images
  (``VGG16Classifier``, one ``nn.Sequential``).
- ``densenet121``: CheXpert (Appendix A): ``monai.networks.nets.DenseNet121`` (2-d, from scratch).

The paper's training hyper-parameters live in ``CLASSIFIER_HYPERPARAMETERS`` and nowhere else.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass

from torch import nn

__all__ = [
    "CLASSIFIERS",
    "CLASSIFIER_HYPERPARAMETERS",
    "DEFAULT_CLASSIFIER",
    "ClassifierHyperParameters",
    "VGG16Classifier",
    "build_classifier",
    "build_vgg16_classifier",
    "classifier_hyperparameters",
]


@dataclass(frozen=True)
class ClassifierHyperParameters:
    """How a downstream classifier is trained.

    lr: Adam learning rate; batch_size: images per step; epochs: passes over the training set
    (the model kept is the epoch with the lowest validation loss); loss is always cross-entropy.
    """

    lr: float
    batch_size: int
    epochs: int
    source: str

    def to_dict(self) -> dict:
        return asdict(self)


# Paper 000, Appendix A: cross-entropy, 30 epochs, best epoch by lowest validation loss for every data set;
# VGG16 (Kvasir) batch 64 / lr 1e-4; DenseNet121 (CheXpert) batch 64 / lr 1e-3; the Corn 4-conv and the
# PlantVillage 3-conv CNNs batch 32 / lr 1e-3. The paper does not name the optimiser: medsyn uses Adam.
_PAPER_EPOCHS = 30
CLASSIFIER_HYPERPARAMETERS: dict[str, ClassifierHyperParameters] = {
    "vgg16": ClassifierHyperParameters(
        lr=1e-4, batch_size=64, epochs=_PAPER_EPOCHS, source="paper 000 App. A (Kvasir)"
    ),
    "densenet121": ClassifierHyperParameters(
        lr=1e-3, batch_size=64, epochs=_PAPER_EPOCHS, source="paper 000 App. A (CheXpert)"
    ),
    "cnn4": ClassifierHyperParameters(
        lr=1e-3, batch_size=32, epochs=_PAPER_EPOCHS, source="paper 000 App. A (Corn)"
    ),
    "cnn3": ClassifierHyperParameters(
        lr=1e-3, batch_size=32, epochs=_PAPER_EPOCHS, source="paper 000 App. A (PlantVillage)"
    ),
    # Not from the paper: a quick classifier so that the laptop demo trains a dozen of them in minutes.
    "small_cnn": ClassifierHyperParameters(lr=1e-3, batch_size=32, epochs=10, source="medsyn demo default"),
}
# The arch used when a config names none (every API and config section takes it from here).
DEFAULT_CLASSIFIER = "small_cnn"

# Width of the hidden fully connected layer of cnn4 / cnn3 (Appendix A says "two fully connected layers"
# without a width; 128 is medsyn's choice).
_CNN_HIDDEN_UNITS = 128


def _check_shape(
    name: str, num_classes: int, image_shape: tuple[int, int, int], min_size: int
) -> tuple[int, int, int]:
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2 for classifier {name!r}, got {num_classes!r}")
    shape = tuple(image_shape)
    if len(shape) != 3 or not all(isinstance(size, int) and size > 0 for size in shape):
        raise ValueError(f"image_shape must be (C, H, W) of positive integers, got {image_shape!r}")
    if min(shape[1:]) < min_size:
        raise ValueError(
            f"image_shape {shape}: classifier {name!r} halves the image size repeatedly and needs "
            f"H and W >= {min_size}"
        )
    return shape  # type: ignore[return-value]


def _plain_cnn(
    channels: tuple[int, ...], num_classes: int, image_shape: tuple[int, int, int]
) -> nn.Sequential:
    """Conv 3x3 (stride 1, padding 1) + ReLU + 2x2 max-pool per entry of ``channels``, then FC-ReLU-FC."""
    layers: list[nn.Module] = []
    in_channels, height, width = image_shape
    for out_channels in channels:
        layers += [
            nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        ]
        in_channels, height, width = out_channels, height // 2, width // 2
    layers += [
        nn.Flatten(),
        nn.Linear(in_channels * height * width, _CNN_HIDDEN_UNITS),
        nn.ReLU(inplace=True),
        nn.Linear(_CNN_HIDDEN_UNITS, num_classes),
    ]
    return nn.Sequential(*layers)


def build_small_cnn(num_classes: int, image_shape: tuple[int, int, int]) -> nn.Module:
    """Two conv blocks (16, 32 maps) + 4x4 average pool + linear: ~10k parameters, any H, W >= 4."""
    shape = _check_shape("small_cnn", num_classes, image_shape, min_size=4)
    return nn.Sequential(
        nn.Conv2d(shape[0], 16, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        # a 4x4 grid keeps where strokes are (a global pool would not tell a 6 from a 9)
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, num_classes),
    )


def build_cnn4(num_classes: int, image_shape: tuple[int, int, int]) -> nn.Module:
    """Corn CNN (Appendix A): 4 conv layers with 8, 16, 32, 64 maps; needs H, W >= 16."""
    shape = _check_shape("cnn4", num_classes, image_shape, min_size=16)
    return _plain_cnn((8, 16, 32, 64), num_classes, shape)


def build_cnn3(num_classes: int, image_shape: tuple[int, int, int]) -> nn.Module:
    """PlantVillage CNN (Appendix A): 3 conv layers with twice cnn4's maps, 16, 32, 64; needs H, W >= 8."""
    shape = _check_shape("cnn3", num_classes, image_shape, min_size=8)
    return _plain_cnn((16, 32, 64), num_classes, shape)


# VGG16 = configuration "D" of Simonyan & Zisserman (2015); "M" is a 2x2 max-pool.
_VGG16_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG16Classifier(nn.Sequential):
    """The VGG16 classifier of paper 000 App. A (Kvasir), as torchvision builds it (features, 7x7 adaptive
    average pool, 4096-4096 classifier with dropout), trained from scratch; the first conv takes
    ``in_channels`` (grey images stay one channel). Not the pretrained feature extractor of
    ``medsyn.metrics.features``.

    One ``nn.Sequential`` (features, avgpool, flatten, classifier): its forward is that layer list, which is
    also what DeepFool's sequential engine reads, so there is no second forward to keep in step. The state
    dict keys are torchvision's (``features.0.weight`` ... ``classifier.6.bias``; avgpool and flatten have none).
    """

    def __init__(self, num_classes: int, in_channels: int, classifier_width: int = 4096) -> None:
        layers: list[nn.Module] = []
        channels = in_channels
        for item in _VGG16_LAYERS:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                channels = int(item)
        super().__init__(
            OrderedDict(
                features=nn.Sequential(*layers),
                avgpool=nn.AdaptiveAvgPool2d((7, 7)),
                flatten=nn.Flatten(),
                classifier=nn.Sequential(
                    nn.Linear(512 * 7 * 7, classifier_width),
                    nn.ReLU(inplace=True),
                    nn.Dropout(),
                    nn.Linear(classifier_width, classifier_width),
                    nn.ReLU(inplace=True),
                    nn.Dropout(),
                    nn.Linear(classifier_width, num_classes),
                ),
            )
        )
        # torchvision's initialisation (the network is trained from scratch, so it matters).
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)


def build_vgg16_classifier(num_classes: int, image_shape: tuple[int, int, int]) -> nn.Module:
    """The VGG16 classifier from scratch (Appendix A, Kvasir); 5 max-pools, so H, W >= 32."""
    shape = _check_shape("vgg16", num_classes, image_shape, min_size=32)
    return VGG16Classifier(num_classes, in_channels=shape[0])


def build_densenet121(num_classes: int, image_shape: tuple[int, int, int]) -> nn.Module:
    """MONAI DenseNet121 (2-d, from scratch; Appendix A, CheXpert); it downsamples 32x, so H, W >= 32."""
    from monai.networks.nets import DenseNet121

    shape = _check_shape("densenet121", num_classes, image_shape, min_size=32)
    return DenseNet121(spatial_dims=2, in_channels=shape[0], out_channels=num_classes)


CLASSIFIERS: dict[str, Callable[[int, tuple[int, int, int]], nn.Module]] = {
    "small_cnn": build_small_cnn,
    "cnn4": build_cnn4,
    "cnn3": build_cnn3,
    "vgg16": build_vgg16_classifier,
    "densenet121": build_densenet121,
}


def build_classifier(name: str, *, num_classes: int, image_shape: tuple[int, int, int]) -> nn.Module:
    """A freshly initialised classifier (seed torch before calling for reproducible weights)."""
    if name not in CLASSIFIERS:
        raise ValueError(f"unknown classifier arch {name!r}; known: {sorted(CLASSIFIERS)}")
    return CLASSIFIERS[name](num_classes, image_shape)


def classifier_hyperparameters(name: str) -> ClassifierHyperParameters:
    """The training hyper-parameters registered for classifier ``name``."""
    if name not in CLASSIFIER_HYPERPARAMETERS:
        raise ValueError(f"unknown classifier arch {name!r}; known: {sorted(CLASSIFIER_HYPERPARAMETERS)}")
    return CLASSIFIER_HYPERPARAMETERS[name]
