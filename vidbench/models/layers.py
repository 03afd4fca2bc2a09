"""Layers shared by the models: Keras-style initialisation and the authors' 64x64 conv encoder/decoder.

Shapes follow the CW-VAE code (cnns.py of vaibhavsaxena11/cwvae, REFERENCE.md section 1): four 'valid'
convs, kernel 4, stride 2, LeakyReLU(0.2) (TF's leaky_relu default) take 64 -> 31 -> 14 -> 6 -> 2; the
decoder goes 1 -> 5 -> 13 -> 30 -> 64 with transposed convs and a tanh output. `filters` is the authors'
32 * channels_mult.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from vidbench.models.fast_layers import (
    PixelConvTranspose2d,
    SmallOutputConv2d,
    conv_transpose_bias_apart,
    conv_transpose_stride2,
    memory_format_of,
)

LEAKY_SLOPE = 0.2  # tf.nn.leaky_relu default alpha
IMAGE_SIZE = 64


def keras_init_(module: nn.Module) -> nn.Module:
    """Keras defaults: glorot-uniform kernels, zero biases, orthogonal GRU recurrent kernel.

    torch's xavier_uniform_ uses the same limit sqrt(6 / (fan_in + fan_out)) for Linear, Conv2d and
    ConvTranspose2d (the sum of fans is symmetric, so the transposed-kernel layout does not matter). The GRU
    kernels are initialised as whole [3*units, in] matrices as Keras does; torch's gate order (r, z, n)
    differs from Keras' (z, r, h), which changes nothing for these distributions.
    """
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.GRUCell):
            nn.init.xavier_uniform_(m.weight_ih)
            nn.init.orthogonal_(m.weight_hh)
            nn.init.zeros_(m.bias_ih)
            nn.init.zeros_(m.bias_hh)
    return module


class ConvEncoder(nn.Module):
    """Frames [N, C, 64, 64] -> features [N, 2*2*8*filters] (1024 for the authors' 32 filters)."""

    def __init__(self, channels: int, filters: int = 32):
        super().__init__()
        widths = [channels, filters, 2 * filters, 4 * filters, 8 * filters]
        # the last one (6x6 -> 2x2 at 64x64 frames) runs as a matmul on the CPU (SmallOutputConv2d decides by shape)
        self.convs = nn.ModuleList(SmallOutputConv2d(a, b, 4, stride=2) for a, b in zip(widths, widths[1:]))
        self.out_features = 2 * 2 * widths[-1]

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        # channels-last runs these strided convs ~1.5x faster on CPU (oneDNN; measured in bench_cwvae.py); on
        # CUDA they follow the weights' layout (--channels-last), the first conv included
        channels_last = frames.device.type == "cpu" or memory_format_of(self.convs[-1].weight) == torch.channels_last
        x = frames.contiguous(memory_format=torch.channels_last) if channels_last else frames
        for conv in self.convs:  # in place: a conv's backward needs its input, not its output
            x = F.leaky_relu(conv(x), LEAKY_SLOPE, inplace=True)
        # Keras flattens channels-last (H, W, C); the order only permutes features, which the following
        # dense layers absorb, so torch's (C, H, W) flattening is equivalent.
        return x.flatten(1)


class ConvDecoder(nn.Module):
    """States [N, D] -> tanh frames [N, C, 64, 64] in [-1, 1] (the authors' output activation)."""

    def __init__(self, in_features: int, channels: int, filters: int = 32):
        super().__init__()
        self.dense = nn.Linear(in_features, 32 * filters)  # 1024 for filters=32, no activation
        widths = [32 * filters, 4 * filters, 2 * filters, filters]
        kernels = [5, 5, 6]
        self.deconvs = nn.ModuleList(
            (PixelConvTranspose2d if a == widths[0] else nn.ConvTranspose2d)(a, b, k, stride=2)
            for a, b, k in zip(widths, widths[1:], kernels)
        )
        self.out = nn.ConvTranspose2d(filters, channels, 6, stride=2)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        x = self.deconvs[0](self.dense(states)[:, :, None, None])  # a 1x1 image: one matmul (PixelConvTranspose2d)
        x = F.leaky_relu(x, LEAKY_SLOPE, inplace=True)  # addmm's backward needs its inputs, not its output
        for deconv in self.deconvs[1:]:
            x = self._middle(deconv, x)
        if x.device.type != "cpu":  # the split form is a CPU (oneDNN) speed-up; under compile on CUDA its
            return torch.tanh(self.out(x))  # backward's strides disagree with inductor's (measured on an H100)
        return torch.tanh(conv_transpose_stride2(x, self.out.weight, self.out.bias))

    @staticmethod
    def _middle(deconv: nn.ConvTranspose2d, x: torch.Tensor) -> torch.Tensor:
        """leaky_relu(deconv(x)). Under CPU autocast, oneDNN's bf16 transposed-conv forward is slow (400 frames,
        2 threads: 128->64 k5 64.4 ms against 19.8 as conv + pixel shuffle, backward alike); in fp32 the native
        forward is the faster (35.4 vs 38.5 ms), so only autocast takes the split form. Its output follows its
        input's layout, so the input takes the weights' layout first."""
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            x = x.contiguous(memory_format=memory_format_of(deconv.weight))
            # not in place: the split form's output may be a view made inside its autograd Function
            return F.leaky_relu(conv_transpose_stride2(x, deconv.weight, deconv.bias), LEAKY_SLOPE)
        # in place (a transposed conv's backward needs its input, not its output): one pass less per layer
        y = conv_transpose_bias_apart(x, deconv.weight, deconv.bias, deconv.stride, deconv.padding)
        return F.leaky_relu(y, LEAKY_SLOPE, inplace=True)
