"""Load a weights file into a fixed architecture, refusing anything that does not match it exactly.

A weights file of the wrong architecture must fail loudly before any metric is computed: a partial or
shape-mismatched load would give features (and FIDs) that look plausible and mean nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

from medsyn.metrics.features.spec import FeatureExtractorSpec

__all__ = ["load_architecture", "load_state_dict_strict", "load_state_strict", "read_state_dict", "weights_file_extractor"]

_SHOW = 5  # how many mismatching keys an error message lists


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors in ``path`` (a ``torch.save``-d state dict, optionally wrapped as ``{"state_dict": ...}``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"weights file {path} is not a readable torch state dict: {error}") from error
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"weights file {path} does not hold a state dict of tensors (got {type(obj).__name__})")
    return dict(obj)


def load_state_dict_strict(model: torch.nn.Module, path: str | os.PathLike) -> torch.nn.Module:
    """Load ``path`` into ``model`` requiring identical keys and shapes; ValueError naming the file, the
    architecture and the first mismatching keys otherwise.

    ``model`` may be built on the "meta" device (no memory, no random initialisation: VGG16's 138M
    parameters take seconds to initialise only to be overwritten); the file's tensors are then assigned,
    cast to the dtype the architecture declares.
    """
    return load_state_strict(model, read_state_dict(path), source=f"weights file {Path(path)}")


def load_state_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], *, source: str) -> torch.nn.Module:
    """:func:`load_state_dict_strict` of tensors already read (``source`` names them in errors, e.g. "weights
    file X"): identical keys and shapes or ValueError; cast to the architecture's dtypes; meta models assigned."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or wrong_shape:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s), first: {missing[:_SHOW]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s), first: {unexpected[:_SHOW]}")
        if wrong_shape:
            parts.append(f"{len(wrong_shape)} shape mismatch(es), first: {wrong_shape[:_SHOW]}")
        raise ValueError(f"{source} does not match the {type(model).__name__} architecture: " + "; ".join(parts))
    state = {k: v.to(expected[k].dtype) if v.is_floating_point() else v for k, v in state.items()}
    on_meta = any(t.is_meta for t in expected.values())
    model.load_state_dict(state, strict=True, assign=on_meta)
    return model


def load_architecture(architecture: Callable[[], torch.nn.Module], weights_path: str | os.PathLike) -> torch.nn.Module:
    """``architecture()`` built on the meta device (no random initialisation: every tensor comes from the
    file), the weights at ``weights_path`` loaded strictly, in eval mode."""
    with torch.device("meta"):
        model = architecture()
    return load_state_dict_strict(model, weights_path).eval()


def weights_file_extractor(architecture: Callable[[], torch.nn.Module], weights_path: str | os.PathLike, *,
                           name: str, input_size: int, mean: tuple[float, float, float],
                           std: tuple[float, float, float], feature_dim: int) -> FeatureExtractorSpec:
    """The extractor of ``architecture`` with the weights at ``weights_path``, loaded now (a wrong file fails
    before any training), NOT registered: a run holds it as an object (``extract_features(images, spec)``).
    Inputs are resized as torch-fidelity does (TF1 bilinear) and normalised with ``mean``/``std``."""
    model = load_architecture(architecture, weights_path)
    return FeatureExtractorSpec(name=name, build=lambda: model, input_size=input_size, mean=mean, std=std,
                                feature_dim=feature_dim, resize_mode="tf1_bilinear")
