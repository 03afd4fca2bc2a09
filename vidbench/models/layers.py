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
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 4, stride=2) for a, b in zip(widths, widths[1:]))
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
            nn.ConvTranspose2d(a, b, k, stride=2) for a, b, k in zip(widths, widths[1:], kernels)
        )
        self.out = nn.ConvTranspose2d(filters, channels, 6, stride=2)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        x = self.dense(states)
        # The first transposed conv reads a 1x1 image: it is exactly a matmul with the kernel viewed as
        # [in, out*k*k] (no overlapping taps), several times faster than the generic CPU kernel.
        first = self.deconvs[0]
        taps = first.kernel_size[0] ** 2
        if memory_format_of(first.weight) == torch.channels_last:
            # the weight's own (kh, kw, out) order: no copy of the weight, and the output is channels-last
            # like the next layer's weights (CPU training: 5 ms of weight copies a step saved)
            x = torch.addmm(first.bias.repeat(taps), x, first.weight.permute(0, 2, 3, 1).flatten(1))
            x = x.view(-1, *first.kernel_size, first.out_channels).permute(0, 3, 1, 2)
        else:
            x = torch.addmm(first.bias.repeat_interleave(taps), x, first.weight.flatten(1))
            x = x.view(-1, first.out_channels, *first.kernel_size)
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


def conv_transpose_bias_apart(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                              stride, padding) -> torch.Tensor:
    """F.conv_transpose2d(x, weight, bias, stride, padding), the bias added as its own op on a CPU in fp32.

    oneDNN's transposed convolution handles a bias slowly on the CPU, both ways: 400 frames, 2 threads,
    channels-last, the decoder's 64 -> 32 k6 layer's backward 143 ms with the bias gradient, 107 without it
    plus 1.2 ms for the bias gradient as a sum; the 128 -> 64 k5 layer's forward 43 ms with the bias, 29
    without it plus its add (tests/benchmarks/bench_cwvae.py compares the two). Elsewhere (CUDA,
    autocast) the native call."""
    if bias is None or x.device.type != "cpu" or torch.is_autocast_enabled("cpu"):
        return F.conv_transpose2d(x, weight, bias, stride, padding)
    # in place: the convolution's backward does not need its output, and a copy would be one more pass
    return F.conv_transpose2d(x, weight, None, stride, padding).add_(bias[:, None, None])


def conv_transpose_stride2(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, padding: int = 0) -> torch.Tensor:
    """F.conv_transpose2d(x, weight, bias, stride=2, padding=padding): forward as one ordinary conv + pixel
    shuffle (then `padding` rows and columns cropped from each side), backward by the native transposed
    convolution's backward.

    Output pixel (2u+p, 2v+q) only receives kernel taps of parity (p, q), so each of the 4 parity classes
    is a plain correlation of x with a flipped sub-kernel; stacking them as 4x the output channels and
    interleaving with pixel_shuffle gives the transposed conv. An odd kernel is zero-padded to even and the
    extra row/column cropped. For few output channels (the decoder's last layer) the generic CPU transposed
    conv is slow forward (71 ms vs 23 for this form at 400 frames, 32 -> 1 channels, 2 threads) but fast
    backward (13 ms vs 30 through the parity form's graph), so each direction takes the faster path (VTA's
    last layer, 128 -> 1, k4, padding 1, 320 frames: 106 ms forward natively). Tested against
    F.conv_transpose2d, values and gradients."""
    return _ParityForwardTransposedConv.apply(x, weight, bias, padding)


class _ParityForwardTransposedConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, padding):
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        cin, cout, k = weight.shape[0], weight.shape[1], weight.shape[2]
        half = (k + 1) // 2
        if k % 2:
            weight = F.pad(weight, (0, 1, 0, 1))
        # tap ky = 2*m + p: [cin, cout, m, p, n, q]; flip m, n to turn the scatter into a correlation
        sub = weight.view(cin, cout, half, 2, half, 2).flip(2, 4)
        sub = sub.permute(1, 3, 5, 0, 2, 4).reshape(cout * 4, cin, half, half)  # channel = (o, p, q)
        y = F.pixel_shuffle(F.conv2d(x, sub, bias.repeat_interleave(4), padding=half - 1), 2)
        ctx.dtypes = y.dtype, x.dtype, bias.dtype  # under autocast the conv ran in y's dtype
        size = (x.shape[-2] - 1) * 2 + k - padding, (x.shape[-1] - 1) * 2 + k - padding
        return y[..., padding : size[0], padding : size[1]].contiguous(memory_format=memory_format_of(x))

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        compute, x_dtype, bias_dtype = ctx.dtypes
        grad = grad.to(compute).contiguous(memory_format=memory_format_of(x))
        # the bias gradient as a sum, not by the convolution's backward: oneDNN's is slow (see
        # conv_transpose_bias_apart; 32 -> 1 k6, 400 frames: 28.5 ms with it, 24.7 + 0.1 apart)
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], False]
        grad_x, grad_w, _ = torch.ops.aten.convolution_backward(
            grad, x.to(compute), weight.to(compute), None, [2, 2], [ctx.padding] * 2, [1, 1], True, [0, 0], 1, mask)
        grad_b = grad.sum((0, 2, 3), dtype=bias_dtype) if ctx.needs_input_grad[2] else None
        return (grad_x.to(x_dtype) if grad_x is not None else None,
                grad_w.to(weight.dtype) if grad_w is not None else None, grad_b, None)


def memory_format_of(x: torch.Tensor):
    return torch.channels_last if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) \
        and not x.is_contiguous() else torch.contiguous_format


def weighted_batch_norm(x: torch.Tensor, bn: nn.BatchNorm2d, counts: torch.Tensor) -> torch.Tensor:
    """Training-mode bn(x.repeat_interleave(counts, 0)) without the repeats: row n of x [N, C, H, W] counts
    `counts[n]` times in the batch statistics (and in the running-statistics update, unbiased variance as
    BatchNorm's). The rows that the repeated batch would hold are the same function of the parameters, so the
    loss and its gradients equal those of the repeated batch up to float rounding."""
    w = counts.to(x.dtype)[:, None]
    n = float(counts.sum()) * x.shape[2] * x.shape[3]
    mean = (x.sum((2, 3)) * w).sum(0) / n
    centred = x - mean[:, None, None]
    var = ((centred * centred).sum((2, 3)) * w).sum(0) / n
    if bn.training and bn.track_running_stats:
        with torch.no_grad():
            bn.num_batches_tracked += 1
            momentum = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
            bn.running_mean.lerp_(mean.to(bn.running_mean.dtype), momentum)
            bn.running_var.lerp_((var * n / max(n - 1, 1)).to(bn.running_var.dtype), momentum)
    scale = bn.weight * torch.rsqrt(var + bn.eps)
    return centred * scale[:, None, None] + bn.bias[:, None, None]
