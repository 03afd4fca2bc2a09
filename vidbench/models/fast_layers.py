"""Drop-in forms of torch layers that are faster on the CPU (oneDNN, 2 threads) and compute the same function.

Each is exact math, only the float rounding differs, and each keeps torch's own call where it does not win
(CUDA, autocast, shapes outside its case). Measured per layer in the docstrings; tested against torch's layers
(values, float64 gradcheck, memory formats) in tests/test_fast_layers.py and, for the transposed convs, in
tests/test_cwvae.py.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

MAX_MATMUL_POSITIONS = 4  # a 2x2 output wins as a matmul; CW-VAE's 6x6 (64 -> 128 k4 s2) loses (window copies)


class SmallOutputConv2d(nn.Conv2d):
    """nn.Conv2d that runs as one matmul over its input windows when its output has at most
    MAX_MATMUL_POSITIONS positions (no padding), e.g. an encoder's last 'valid' conv. oneDNN's convolution
    handles these shapes slowly on the CPU: SVG's 512 -> 128 k4 on 4x4 (1x1 out, 400 frames, 2 threads)
    backward 39 ms, ~40 GFLOP/s; CW-VAE's 128 -> 256 k4 s2 on 6x6 (2x2 out) 81 GFLOP/s backward, 44 -> 34 ms
    forward + backward as a matmul. Channels-last input and weight are read in their own (kh, kw, c) order;
    a 1x1 output copies neither (its window is the whole input). Any other input: the native convolution."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or self.padding != (0, 0) or self.dilation != (1, 1) or self.groups != 1:
            return super().forward(x)
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        oh, ow = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
        if oh < 1 or ow < 1 or oh * ow > (1 if x.device.type != "cpu" else MAX_MATMUL_POSITIONS):
            return super().forward(x)  # on CUDA only the copy-free 1x1 case (the window copies are oneDNN's cure)
        channels_last = memory_format_of(x) == torch.channels_last
        weight = self.weight.permute(0, 2, 3, 1).flatten(1) if channels_last else self.weight.flatten(1)
        if oh == ow == 1:  # the window is the input itself (a view, autograd's own backward)
            cols = x[:, :, :kh, :kw]
            cols = cols.permute(0, 2, 3, 1).flatten(1) if channels_last else cols.flatten(1)
            return F.linear(cols, weight, self.bias)[:, :, None, None]
        cols = _Windows.apply(x, self.kernel_size, self.stride, channels_last)  # [N * oh * ow, k * k * C]
        y = F.linear(cols, weight, self.bias).view(x.shape[0], oh, ow, -1).permute(0, 3, 1, 2)
        return y if channels_last else y.contiguous()


class _Windows(torch.autograd.Function):
    """x [N, C, H, W] -> its conv windows as rows [N * oh * ow, k * k * C] ((kh, kw, c) order for channels-last,
    (c, kh, kw) otherwise); backward adds each window's gradient back where it came from."""

    @staticmethod
    def forward(ctx, x, kernel, stride, channels_last):
        ctx.shape, ctx.kernel, ctx.stride, ctx.channels_last = x.shape, kernel, stride, channels_last
        windows = _window_view(x, kernel, stride, channels_last)
        ctx.windows_shape = windows.shape
        return windows.reshape(windows.shape[0] * windows.shape[1] * windows.shape[2], -1)

    @staticmethod
    def backward(ctx, grad):
        fmt = torch.channels_last if ctx.channels_last else torch.contiguous_format
        grad_x = torch.empty(ctx.shape, dtype=grad.dtype, device=grad.device, memory_format=fmt).zero_()
        grad_windows = grad.reshape(ctx.windows_shape)
        (kh, kw), (sh, sw) = ctx.kernel, ctx.stride
        spatial = grad_x.permute(0, 2, 3, 1) if ctx.channels_last else grad_x  # H, W at dims 1, 2 or 2, 3
        for i in range(ctx.windows_shape[1]):
            for j in range(ctx.windows_shape[2]):
                if ctx.channels_last:
                    spatial[:, i * sh : i * sh + kh, j * sw : j * sw + kw] += grad_windows[:, i, j]
                else:
                    spatial[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw] += grad_windows[:, i, j]
        return grad_x, None, None, None


def _window_view(x: torch.Tensor, kernel, stride, channels_last: bool) -> torch.Tensor:
    """A strided view [N, oh, ow, kh, kw, C] (channels-last) or [N, oh, ow, C, kh, kw] of x's conv windows."""
    (kh, kw), (sh, sw) = kernel, stride
    n, c, h, w = x.shape
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    sn, sc, sy, sx = x.stride()
    if channels_last:
        return x.as_strided((n, oh, ow, kh, kw, c), (sn, sh * sy, sw * sx, sy, sx, sc), x.storage_offset())
    return x.as_strided((n, oh, ow, c, kh, kw), (sn, sh * sy, sw * sx, sc, sy, sx), x.storage_offset())


class PixelConvTranspose2d(nn.ConvTranspose2d):
    """nn.ConvTranspose2d that runs as one matmul on a 1x1 input (no padding): [N, Cin, 1, 1] -> [N, Cout, k, k],
    e.g. a decoder's first layer. Its taps never overlap, so it is exactly a matmul with the kernel viewed as
    [in, out*k*k]; the generic CPU kernel is several times slower (SVG's 128 -> 512 k4, 396 frames: 19 ms forward,
    45 backward). A channels-last weight is read in its own (kh, kw, out) order (no weight copy; CW-VAE: 5 ms of
    copies a step) and gives a channels-last output, like the next layer's weights."""

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[-2:]) != (1, 1) or self.padding != (0, 0) or output_size is not None \
                or self.output_padding != (0, 0) or self.dilation != (1, 1) or self.groups != 1:
            return super().forward(x, output_size)
        taps = self.kernel_size[0] * self.kernel_size[1]
        if memory_format_of(self.weight) == torch.channels_last:
            bias = None if self.bias is None else self.bias.repeat(taps)
            y = F.linear(x.flatten(1), self.weight.permute(0, 2, 3, 1).flatten(1).t(), bias)
            return y.view(-1, *self.kernel_size, self.out_channels).permute(0, 3, 1, 2)
        bias = None if self.bias is None else self.bias.repeat_interleave(taps)
        y = F.linear(x.flatten(1), self.weight.flatten(1).t(), bias)
        return y.view(-1, self.out_channels, *self.kernel_size)


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


def conv_transpose_stride2(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                           padding: int = 0) -> torch.Tensor:
    """F.conv_transpose2d(x, weight, bias, stride=2, padding=padding): forward as one ordinary conv + pixel
    shuffle (then `padding` rows and columns cropped from each side), backward by the native transposed
    convolution's backward.

    Output pixel (2u+p, 2v+q) only receives kernel taps of parity (p, q), so each of the 4 parity classes
    is a plain correlation of x with a flipped sub-kernel; stacking them as 4x the output channels and
    interleaving with pixel_shuffle gives the transposed conv. An odd kernel is zero-padded to even and the
    extra row/column cropped. For few output channels (the decoder's last layer) the generic CPU transposed
    conv is slow forward (71 ms vs 23 for this form at 400 frames, 32 -> 1 channels, 2 threads) but fast
    backward (13 ms vs 30 through the parity form's graph), so each direction takes the faster path (VTA's
    last layer, 128 -> 1, k4, padding 1, 320 frames: 106 ms forward natively; SVG's skip half of its last
    layer, 64 -> 1 at 144 frames: 31 ms natively, ~10 GFLOP/s). Tested against F.conv_transpose2d, values and
    gradients, with and without a bias."""
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
        sub_bias = None if bias is None else bias.repeat_interleave(4)
        y = F.pixel_shuffle(F.conv2d(x, sub, sub_bias, padding=half - 1), 2)
        ctx.dtypes = y.dtype, x.dtype, (x if bias is None else bias).dtype  # autocast: the conv ran in y's dtype
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


class ELU(nn.Module):
    """nn.ELU() (alpha 1); on the CPU in fp32/fp64 as max(x, exp(min(x, 0)) - 1).

    torch's CPU ELU is bound by its expm1 (VTA's 360 x 128 x 32 x 32 activation, 2 threads: 205 ms forward,
    against 49 ms for this form: exp is ~10x cheaper than expm1 here). e^x >= 1 + x makes the maximum pick
    exp(x) - 1 for x <= 0 and x above; exp(x) - 1 instead of expm1(x) costs at most one float32 rounding
    of 1 (6e-8 absolute) near 0. The backward is torch's own (elu_backward from the output). Elsewhere (CUDA,
    bf16 under autocast, where the - 1 would round away a bf16's small values) the native call."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
            return F.elu(x)
        return _ExpELU.apply(x)


class _ExpELU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = x.clamp(max=0).exp_().sub_(1)  # x's memory format
        torch.maximum(x, y, out=y)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        # from the result: d/dx = 1 where x > 0, y + 1 (= e^x) elsewhere; one fused pass
        return torch.ops.aten.elu_backward(grad, 1.0, 1, 1.0, True, y)


def memory_format_of(x: torch.Tensor):
    return torch.channels_last if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) \
        and not x.is_contiguous() else torch.contiguous_format


def weighted_batch_norm(x: torch.Tensor, bn: nn.BatchNorm2d, counts: torch.Tensor) -> torch.Tensor:
    """Training-mode bn(x.repeat_interleave(counts, 0)) without the repeats: row n of x [N, C, H, W] counts
    `counts[n]` times in the batch statistics (and in the running-statistics update, unbiased variance as
    BatchNorm's). The rows that the repeated batch would hold are the same function of the parameters, so the
    loss and its gradients equal those of the repeated batch up to float rounding.

    One autograd node with torch's fused kernels instead of a graph of elementwise ops: VTA's 360 x 128 x 32
    x 32 encoder activation, 2 threads, forward 57 -> ~45 ms, backward 150 -> 33 ms. Statistics in float32 at
    least (a bf16 input under autocast is summed in float32)."""
    stat_dtype = torch.promote_types(x.dtype, torch.float32)
    w = counts.to(device=x.device, dtype=stat_dtype)
    n = float(counts.sum()) * x.shape[2] * x.shape[3]
    with torch.no_grad():  # the Function's backward carries the statistics' dependence on x
        mean = (x.sum((2, 3), dtype=stat_dtype) * w[:, None]).sum(0) / n
        # two passes (centred, then squared): exact where the mean is large against the spread
        centred = (x - mean[:, None, None]).square_()
        var = (centred.sum((2, 3)) * w[:, None]).sum(0) / n
        del centred
        if bn.training and bn.track_running_stats:
            bn.num_batches_tracked += 1
            momentum = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
            bn.running_mean.lerp_(mean.to(bn.running_mean.dtype), momentum)
            bn.running_var.lerp_((var * n / max(n - 1, 1)).to(bn.running_var.dtype), momentum)
    return _WeightedBatchNorm.apply(x, bn.weight, bn.bias, w / n, mean, var, bn.eps)


class _WeightedBatchNorm(torch.autograd.Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias with mean and var the row-weighted statistics of x.

    Row n of x weighs `share[n]` (its count over the repeated batch's element count per channel) in them, so
    dL/dx = weight * invstd * (g - share[n] * (sum(g) + xhat * sum(g * xhat))), the sums over the whole of
    g: the repeated batch's gradient summed over each row's copies."""

    @staticmethod
    def forward(ctx, x, weight, bias, share, mean, var, eps):
        invstd = torch.rsqrt(var + eps)
        ctx.save_for_backward(x, weight, share, mean, invstd)
        ctx.eps = eps
        return F.batch_norm(x, mean, var, weight, bias, False, 0.0, eps)  # eval mode: these statistics, one pass

    @staticmethod
    def backward(ctx, grad):
        x, weight, share, mean, invstd = ctx.saved_tensors
        grad = grad.contiguous(memory_format=memory_format_of(x))
        # sum(g * xhat) and sum(g) per channel in one fused pass (grad_input not asked for)
        _, grad_weight, grad_bias = torch.ops.aten.native_batch_norm_backward(
            grad, x, weight, None, None, mean, invstd, True, ctx.eps, [False, True, True])
        scale = weight * invstd
        # dL/dx = scale * g + c[n] + d[n] * x with per-row, per-channel c and d
        d = -(scale * invstd * grad_weight) * share[:, None]
        c = -(scale * grad_bias) * share[:, None] - d * mean
        grad_x = torch.empty_like(x)
        torch.addcmul(c[:, :, None, None], x, d[:, :, None, None], out=grad_x)
        grad_x.addcmul_(grad, scale[:, None, None])
        return grad_x, grad_weight, grad_bias, None, None, None, None
