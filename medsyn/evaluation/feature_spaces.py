"""The feature spaces of one run: the fixed extractors (ImageNet networks, weights-file networks) and the
per-seed domain extractor (the penultimate layer of that seed's Baseline Real classifier).

    spaces = FeatureSpaces.from_settings(fidelity, dcr_extractor=privacy["dcr_feature_extractor"])
    spaces.extract(images, "effnet_lite0")                  # float32 [N, D]
    seed_spaces = spaces.with_domain(baseline_classifier, image_shape)
    seed_spaces.extract(images, DOMAIN_EXTRACTOR)

Every weights file is loaded in ``from_settings`` (a wrong file fails before any training). The domain
extractor is an object held by the seed's ``FeatureSpaces``: nothing is registered process-wide, so one
seed's classifier can never score another seed's images.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from medsyn.config.sections import FIRST_FIDELITY_EXTRACTOR

__all__ = ["DOMAIN_EXTRACTOR", "FeatureSpaces"]

DOMAIN_EXTRACTOR = "domain_baseline_real"
_WEIGHTS_EXTRACTORS = (("inception_v3_weights", "inception_v3"), ("vgg16_weights", "vgg16"))


@dataclass(frozen=True)
class FeatureSpaces:
    """names: the fixed extractors in report order; dcr: the DCR feature space (None: pixel space only);
    batch_size: images per forward pass; objects: extractor name -> extractor object (weights files, domain)."""

    names: tuple[str, ...]
    dcr: str | None
    batch_size: int
    objects: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, fidelity: Mapping[str, Any], *, dcr_extractor: str | None) -> FeatureSpaces:
        """fidelity: a parsed [fidelity] section (extractors, *_weights, batch_size); dcr_extractor: a
        registered name, None, or FIRST_FIDELITY_EXTRACTOR (the first fidelity extractor)."""
        from medsyn.metrics.features import weights_extractor
        from medsyn.metrics.features.registry import get_feature_extractor

        names = list(fidelity["extractors"])
        for name in names:
            get_feature_extractor(name)  # unknown name -> ValueError now
        objects: dict[str, Any] = {}
        for key, name in _WEIGHTS_EXTRACTORS:
            path = fidelity.get(key)
            if not path:
                continue
            if not Path(path).is_file():
                raise FileNotFoundError(f"fidelity.{key}: weights file not found: {path}")
            try:
                objects[name] = weights_extractor(name, path)
            except ValueError as error:
                raise ValueError(f"fidelity.{key}: {path} is not a {name} weights file: {error}") from error
            names.append(name)
        if dcr_extractor == FIRST_FIDELITY_EXTRACTOR:
            dcr_extractor = names[0] if names else None
        elif dcr_extractor is not None and dcr_extractor not in objects:
            get_feature_extractor(dcr_extractor)  # unknown name -> ValueError now
        return cls(names=tuple(names), dcr=dcr_extractor, batch_size=int(fidelity["batch_size"]), objects=objects)

    def with_domain(self, classifier: torch.nn.Module, image_shape: tuple[int, int, int]) -> FeatureSpaces:
        """These spaces plus DOMAIN_EXTRACTOR: the penultimate layer of ``classifier`` (this seed's only)."""
        from medsyn.metrics.features import domain_extractor

        objects = {**self.objects, DOMAIN_EXTRACTOR: domain_extractor(classifier, image_shape=image_shape)}
        return replace(self, names=(*self.names, DOMAIN_EXTRACTOR), objects=objects)

    def extract(self, images: torch.Tensor, name: str) -> torch.Tensor:
        from medsyn.metrics.features.extract import extract_features

        return extract_features(images, self.objects.get(name, name), batch_size=self.batch_size)

    def describe(self) -> dict[str, dict[str, Any]]:
        """name -> {"feature_dim", "input_size"} (or a description for the domain extractor), for metadata."""
        from medsyn.metrics.features.registry import get_feature_extractor

        described = {}
        for name in self.names:
            if name == DOMAIN_EXTRACTOR:
                continue
            spec = self.objects.get(name) or get_feature_extractor(name)
            described[name] = {"feature_dim": spec.feature_dim, "input_size": spec.input_size}
        return described
