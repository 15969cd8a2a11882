"""Domain feature extractor: the penultimate layer of a classifier trained on the data itself (e.g. the
Baseline Real classifier), so fidelity metrics can be computed in a feature space that knows the domain
instead of ImageNet's.

The penultimate features are the input of the classifier's last ``nn.Linear`` (or of a layer named by
the caller), captured with a forward pre-hook, so any classifier works without changing its code.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from medsyn.metrics.features.registry import register_feature_extractor
from medsyn.metrics.features.spec import FeatureExtractorSpec

__all__ = ["PenultimateFeatures", "domain_extractor", "register_domain_extractor"]


class PenultimateFeatures(nn.Module):
    """Wraps ``classifier``; ``forward(images) -> float32 [N, D]``, the flattened input of ``layer``.

    classifier: any module mapping images [N,C,H,W] to logits
    layer_name: dotted name of the layer whose INPUT is the feature (default: the last ``nn.Linear``)
    """

    def __init__(self, classifier: nn.Module, layer_name: str | None = None) -> None:
        super().__init__()
        if not isinstance(classifier, nn.Module):
            raise ValueError(f"classifier must be a torch.nn.Module, got {type(classifier).__name__}")
        # A private copy: the hook and eval() must not change the caller's model.
        self.classifier = copy.deepcopy(classifier).eval()
        modules = dict(self.classifier.named_modules())
        if layer_name is None:
            linears = [name for name, module in modules.items() if isinstance(module, nn.Linear)]
            if not linears:
                raise ValueError("classifier has no nn.Linear layer; pass layer_name to say which layer's input to use")
            layer_name = linears[-1]
        if layer_name not in modules or layer_name == "":
            raise ValueError(f"layer_name {layer_name!r} is not a submodule of classifier")
        self.layer_name = layer_name
        self._captured: torch.Tensor | None = None
        modules[layer_name].register_forward_pre_hook(self._capture)

    def _capture(self, module: nn.Module, inputs: tuple) -> None:
        self._captured = inputs[0]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self._captured = None
        self.classifier(images)
        if self._captured is None:
            raise ValueError(f"layer {self.layer_name!r} was not called in the classifier's forward pass")
        features, self._captured = self._captured, None
        return features.flatten(1).float()


def domain_extractor(
    classifier: nn.Module,
    *,
    image_shape: tuple[int, int, int],
    name: str = "domain",
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
    layer_name: str | None = None,
) -> FeatureExtractorSpec:
    """``classifier``'s penultimate layer as an extractor object, NOT registered (a run holds it:
    ``extract_features(images, spec)``), so one seed's classifier never scores another seed's images.

    image_shape: (C, H, W) of the images the classifier was trained on; images are fed at this size
    mean, std: the normalisation the classifier was trained with (default: none, i.e. images in [0,1])
    """
    if len(image_shape) != 3 or min(image_shape) <= 0:
        raise ValueError(f"image_shape must be (C, H, W) with positive entries, got {image_shape}")
    channels, height, width = (int(v) for v in image_shape)
    if height != width:
        raise ValueError(f"image_shape must be square for a feature extractor, got {image_shape}")
    mean = tuple(mean) if mean is not None else (0.0,) * channels
    std = tuple(std) if std is not None else (1.0,) * channels
    wrapped = PenultimateFeatures(classifier, layer_name)
    device = next((p.device for p in wrapped.parameters()), torch.device("cpu"))
    with torch.no_grad():
        probe = wrapped(torch.zeros(1, channels, height, width, device=device))
    return FeatureExtractorSpec(
        name=name,
        build=lambda: wrapped,
        input_size=height,
        mean=mean,
        std=std,
        feature_dim=int(probe.shape[1]),
        input_channels=channels,
    )


def register_domain_extractor(
    name: str,
    classifier: nn.Module,
    *,
    image_shape: tuple[int, int, int],
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
    layer_name: str | None = None,
) -> FeatureExtractorSpec:
    """:func:`domain_extractor` registered process-wide as ``name`` (replacing an extractor of that name)."""
    spec = domain_extractor(classifier, image_shape=image_shape, name=name, mean=mean, std=std, layer_name=layer_name)
    return register_feature_extractor(spec, overwrite=True)
