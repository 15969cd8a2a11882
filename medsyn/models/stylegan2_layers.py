"""The networks of a class-conditional StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the Image
Quality of StyleGAN", config-e/f), with the conditioning of StyleGAN2-ADA (Karras et al. 2020b).

Pieces, top to bottom:
- equalised-learning-rate layers (weights drawn N(0,1) and scaled at run time by 1/sqrt(fan_in), so Adam
  sees every layer at the same scale; the mapping network also uses a 0.01 learning-rate multiplier);
- ``MappingNetwork``: normalised z joined to a normalised class embedding -> FC layers -> w;
- ``SynthesisNetwork``: a learned constant 4x4 input, modulated 3x3 convolutions with weight demodulation,
  per-layer noise with learned strength, and a skip generator (toRGB at every resolution, summed after
  upsampling);
- ``Discriminator``: residual blocks, minibatch standard deviation, and a projection head (the label's
  embedding dotted with the penultimate features, Miyato & Koyama 2018).

Simplification against the reference code: resampling is bilinear upsampling / 2x2 average pooling
instead of the [1,3,3,1] FIR filter, and there is no activation clamping (no mixed precision here).
Images are in [-1, 1].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "EqualizedLinear",
    "EqualizedConv2d",
    "ModulatedConv2d",
    "MappingNetwork",
    "SynthesisNetwork",
    "Discriminator",
    "channels_at",
]

_LRELU_GAIN = math.sqrt(2.0)  # keeps the activation variance of a leaky ReLU near 1 (StyleGAN2 code)


def _leaky_relu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) * _LRELU_GAIN


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    """Feature channels of the layers working at ``resolution`` (StyleGAN2: min(base / res, max))."""
    return max(1, min(channel_base // resolution, channel_max))


class EqualizedLinear(nn.Module):
    """Fully connected layer with equalised learning rate: y = x @ (W * lr_mul / sqrt(in)).T + b * lr_mul."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias_init: float = 0.0,
        lr_multiplier: float = 1.0,
        activation: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init) / lr_multiplier))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.lr_multiplier = lr_multiplier
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_multiplier)
        return _leaky_relu(x) if self.activation else x


class EqualizedConv2d(nn.Module):
    """Convolution (same padding) with equalised learning rate; ``downsample`` halves H and W first."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        bias: bool = True,
        activation: bool = False,
        downsample: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.activation = activation
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.downsample:
            x = F.avg_pool2d(x, 2)
        x = F.conv2d(x, self.weight * self.weight_gain, self.bias, padding=self.weight.shape[-1] // 2)
        return _leaky_relu(x) if self.activation else x


class ModulatedConv2d(nn.Module):
    """Convolution whose input channels are scaled per sample by a style from w (modulation), with the
    output re-normalised to unit variance per sample and output channel (demodulation, StyleGAN2 §2.2).

    x: [B, in, H, W], w: [B, w_dim] -> [B, out, H', W'] (H' = 2H if ``upsample``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        kernel_size: int,
        *,
        demodulate: bool = True,
        upsample: bool = False,
    ) -> None:
        super().__init__()
        # Style bias starts at 1 so that at initialisation modulation is close to the identity.
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.demodulate = demodulate
        self.upsample = upsample

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w)  # [B, in]
        weight = self.weight * self.weight_gain  # [out, in, k, k]
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        # Scaling the input channels by the style and the output channels by the demodulation coefficient
        # equals convolving with the per-sample kernel weight * style * coefficient (StyleGAN2 eq. 1-3),
        # but runs as one ordinary batched convolution (StyleGAN2-ADA's non-fused path).
        x = F.conv2d(x * styles[:, :, None, None], weight, padding=weight.shape[-1] // 2)
        if self.demodulate:
            # sigma_j = sqrt(sum_{i,k} (s_i w_ijk)^2), per sample and output channel: [B, out]
            squared_norms = torch.einsum("oikl,bi->bo", weight.square(), styles.square())
            x = x * torch.rsqrt(squared_norms + 1e-8)[:, :, None, None]
        return x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv + per-pixel noise with a learned strength + bias + leaky ReLU.

    noise_mode "random" draws fresh noise (training); "const" uses a fixed noise image drawn at
    initialisation (sampling, as StyleGAN2-ADA's generate.py), so an image depends only on its z.
    """

    def __init__(
        self, in_channels: int, out_channels: int, w_dim: int, resolution: int, *, upsample: bool = False
    ) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, w_dim, 3, upsample=upsample)
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        x = self.conv(x, w)
        if noise_mode == "random":
            # From the global CPU RNG, whose state the training checkpoint keeps (exact resume on any device).
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3]).to(x.device)
        elif noise_mode == "const":
            noise = self.noise_const
        else:
            raise ValueError(f"noise_mode must be 'random' or 'const', got {noise_mode!r}")
        x = x + noise * self.noise_strength
        return _leaky_relu(x + self.bias[None, :, None, None])


class ToRGB(nn.Module):
    """Modulated 1x1 conv to image channels, without demodulation (StyleGAN2 skip generator)."""

    def __init__(self, in_channels: int, image_channels: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, image_channels, w_dim, 1, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(image_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias[None, :, None, None]


class MappingNetwork(nn.Module):
    """z [B, z_dim] and labels int64 [B] -> w [B, w_dim].

    As in StyleGAN2-ADA: z and the class embedding are each normalised to unit second moment, joined,
    and passed through ``num_layers`` FC layers with a learning-rate multiplier (0.01 in the paper).
    """

    def __init__(
        self, z_dim: int, w_dim: int, num_classes: int, embed_dim: int, num_layers: int, lr_multiplier: float
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.embed = EqualizedLinear(num_classes, embed_dim)  # a linear map of the one-hot label
        widths = [z_dim + embed_dim] + [w_dim] * num_layers
        self.layers = nn.Sequential(
            *(
                EqualizedLinear(widths[i], widths[i + 1], lr_multiplier=lr_multiplier, activation=True)
                for i in range(num_layers)
            )
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        embedding = self.embed(F.one_hot(labels, self.num_classes).to(z.dtype))
        x = torch.cat([_normalize_2nd_moment(z), _normalize_2nd_moment(embedding)], dim=1)
        return self.layers(x)


def _normalize_2nd_moment(x: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class SynthesisNetwork(nn.Module):
    """ws [B, num_ws, w_dim] -> images [B, C, R, R] (about [-1, 1], not clamped); noise_mode as in
    ``SynthesisLayer``.

    Layer i reads ws[:, i]. At 4x4: conv (w0), toRGB (w1). At each resolution r = 8..R: upsampling conv
    (w_{k}), conv (w_{k+1}), toRGB (w_{k+2}), where a toRGB shares its w with the next block's first conv,
    so num_ws = 2 log2(R) - 2 as in StyleGAN2.
    """

    def __init__(
        self, image_size: int, image_channels: int, w_dim: int, channel_base: int, channel_max: int
    ) -> None:
        super().__init__()
        self.image_size = image_size
        self.num_blocks = int(math.log2(image_size)) - 1  # resolutions 4, 8, ..., image_size
        self.num_ws = 2 * int(math.log2(image_size)) - 2
        channels_4 = channels_at(4, channel_base, channel_max)
        self.const = nn.Parameter(torch.randn(channels_4, 4, 4))
        self.conv_4 = SynthesisLayer(channels_4, channels_4, w_dim, 4)
        self.to_rgb_4 = ToRGB(channels_4, image_channels, w_dim)
        self.up_convs = nn.ModuleList()
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        for block in range(1, self.num_blocks):
            resolution = 4 * 2**block
            in_channels = channels_at(resolution // 2, channel_base, channel_max)
            out_channels = channels_at(resolution, channel_base, channel_max)
            self.up_convs.append(SynthesisLayer(in_channels, out_channels, w_dim, resolution, upsample=True))
            self.convs.append(SynthesisLayer(out_channels, out_channels, w_dim, resolution))
            self.to_rgbs.append(ToRGB(out_channels, image_channels, w_dim))

    def forward(self, ws: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        x = self.const[None].expand(ws.shape[0], -1, -1, -1)
        x = self.conv_4(x, ws[:, 0], noise_mode)
        image = self.to_rgb_4(x, ws[:, 1])
        for block, (up_conv, conv, to_rgb) in enumerate(zip(self.up_convs, self.convs, self.to_rgbs)):
            first = 1 + 2 * block
            x = up_conv(x, ws[:, first], noise_mode)
            x = conv(x, ws[:, first + 1], noise_mode)
            image = F.interpolate(image, scale_factor=2, mode="bilinear", align_corners=False)
            image = image + to_rgb(x, ws[:, first + 2])
        return image


class MinibatchStdDev(nn.Module):
    """Appends the mean standard deviation of features over groups of ``group_size`` samples as an extra
    channel, so D can see a lack of variety (StyleGAN2 / Karras et al. 2018). Mixes samples of a batch, so
    it is switched off under DP-SGD (per-sample gradients would no longer be per sample)."""

    def __init__(self, group_size: int) -> None:
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        # The largest group size <= group_size that divides the batch (the reference requires divisibility).
        group = max(g for g in range(1, min(self.group_size, batch) + 1) if batch % g == 0)
        y = x.reshape(group, -1, channels, height, width)
        y = (y - y.mean(dim=0)).square().mean(dim=0)
        y = (y + 1e-8).sqrt().mean(dim=[1, 2, 3])  # [batch / group]
        y = y.reshape(-1, 1, 1, 1).repeat(group, 1, height, width)
        return torch.cat([x, y], dim=1)


class DiscriminatorBlock(nn.Module):
    """Residual block: (conv3x3, downsampling conv3x3) + downsampling 1x1 skip, summed times sqrt(1/2)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3, activation=True)
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3, activation=True, downsample=True)
        self.skip = EqualizedConv2d(in_channels, out_channels, 1, bias=False, downsample=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.skip(x) + self.conv1(self.conv0(x))) * math.sqrt(0.5)


class Discriminator(nn.Module):
    """images [B, C, R, R] in [-1, 1] and labels int64 [B] -> logits [B] (real > 0).

    Projection conditioning: logit = fc(h) + <embed(label), h> / sqrt(dim h), h the penultimate features.
    """

    def __init__(
        self,
        image_size: int,
        image_channels: int,
        num_classes: int,
        channel_base: int,
        channel_max: int,
        mbstd_group_size: int,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.from_rgb = EqualizedConv2d(
            image_channels, channels_at(image_size, channel_base, channel_max), 1, activation=True
        )
        blocks = []
        resolution = image_size
        while resolution > 4:
            blocks.append(
                DiscriminatorBlock(
                    channels_at(resolution, channel_base, channel_max),
                    channels_at(resolution // 2, channel_base, channel_max),
                )
            )
            resolution //= 2
        self.blocks = nn.Sequential(*blocks)
        channels_4 = channels_at(4, channel_base, channel_max)
        self.mbstd = MinibatchStdDev(mbstd_group_size) if mbstd_group_size > 0 else None
        self.conv = EqualizedConv2d(channels_4 + (1 if self.mbstd else 0), channels_4, 3, activation=True)
        self.fc = EqualizedLinear(channels_4 * 16, channels_4, activation=True)
        self.out = EqualizedLinear(channels_4, 1)
        self.embed = EqualizedLinear(num_classes, channels_4)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.from_rgb(images))
        if self.mbstd is not None:
            x = self.mbstd(x)
        features = self.fc(self.conv(x).flatten(1))  # [B, C4]
        class_embedding = self.embed(F.one_hot(labels, self.num_classes).to(features.dtype))
        projection = (features * class_embedding).sum(dim=1) / math.sqrt(features.shape[1])
        return self.out(features).squeeze(1) + projection
