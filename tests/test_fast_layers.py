"""The CPU-fast forms of torch layers (vidbench/models/fast_layers.py) against torch's own: values, gradients
(float64 finite differences), memory formats, and the inputs they leave to the native call."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from vidbench.models.fast_layers import ELU, PixelConvTranspose2d, SmallOutputConv2d, weighted_batch_norm

LAYOUTS = (torch.contiguous_format, torch.channels_last)


def test_exp_based_elu_equals_torch_elu():
    x = torch.cat([torch.randn(10_000) * 4, torch.tensor([0.0, -0.0, 1e-8, -1e-8, -1e-30, 80.0, -80.0])])
    x = torch.cat([x, torch.tensor([float("inf"), -float("inf")])])
    fast, ref = ELU()(x), F.elu(x)
    # exp(x) - 1 instead of expm1(x): one float32 rounding of exp(x) near 1, at most 2^-24 = 6e-8 (measured
    # 6e-8); 2.4e-7 is 4 such ulps, while a wrong branch or alpha is O(0.1-1)
    assert float((fast - ref)[:-2].abs().max()) <= 2.4e-7
    assert fast[-2] == float("inf") and fast[-1] == -1.0
    x4 = torch.randn(3, 5, 4, 4).contiguous(memory_format=torch.channels_last)
    assert ELU()(x4).is_contiguous(memory_format=torch.channels_last)
    x64 = torch.randn(40, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(ELU(), (x64,))  # float64 finite differences of the exp form
    g, xr = torch.randn(len(x) - 2), x[:-2].clone().requires_grad_()
    (grad_fast,) = torch.autograd.grad(ELU()(xr), xr, g)
    (grad_ref,) = torch.autograd.grad(F.elu(xr), xr, g)
    # the backward from the result: e^x recovered as y + 1, the rounding above times |g| (up to ~4): measured
    # 1.2-2.4e-7 over 5 seeds; 1e-6 is ~4x that, a wrong derivative is O(0.1)
    assert torch.allclose(grad_fast, grad_ref, rtol=0, atol=1e-6)
    xb = torch.randn(100).bfloat16()
    assert torch.equal(ELU()(xb), F.elu(xb))  # bf16 keeps torch's ELU (its small values would round away)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("size, stride", [(4, 1), (5, 2), (6, 2), (8, 4)])  # 1x1 (whole input, part of it), 2x2
def test_small_output_conv_is_the_conv(layout, size, stride):
    conv = SmallOutputConv2d(6, 5, 4, stride).double().to(memory_format=layout)
    x = torch.randn(3, 6, size, size, dtype=torch.float64).contiguous(memory_format=layout).requires_grad_()
    out, ref = conv(x), F.conv2d(x, conv.weight, conv.bias, stride)
    assert out.shape == ref.shape and out.is_contiguous(memory_format=layout)
    # float64, the same products summed in another order (~1e-15 measured); a permuted tap is O(1)
    assert torch.allclose(out, ref, atol=1e-12)
    assert torch.autograd.gradcheck(lambda x, w, b: torch.func.functional_call(conv, {"weight": w, "bias": b}, (x,)),
                                    (x, conv.weight, conv.bias))
    nobias = SmallOutputConv2d(6, 5, 4, stride, bias=False).double()
    assert torch.allclose(nobias(x), F.conv2d(x, nobias.weight, None, stride), atol=1e-12)
    bigger = torch.randn(2, 6, 16, 16, dtype=torch.float64)  # more positions: the native convolution, bit for bit
    assert torch.equal(conv(bigger), F.conv2d(bigger, conv.weight, conv.bias, stride))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_pixel_transposed_conv_is_the_transposed_conv_of_a_1x1_input(layout):
    deconv = PixelConvTranspose2d(6, 5, 4).double().to(memory_format=layout)
    x = torch.randn(3, 6, 1, 1, dtype=torch.float64, requires_grad=True)
    out = deconv(x)
    assert out.shape == (3, 5, 4, 4) and out.is_contiguous(memory_format=layout)  # the weight's layout
    assert torch.allclose(out, F.conv_transpose2d(x, deconv.weight, deconv.bias), atol=1e-12)  # as above
    assert torch.autograd.gradcheck(
        lambda x, w, b: torch.func.functional_call(deconv, {"weight": w, "bias": b}, (x,)), (x, deconv.weight, deconv.bias))
    nobias = PixelConvTranspose2d(6, 5, 4, bias=False).double().to(memory_format=layout)
    assert torch.allclose(nobias(x), F.conv_transpose2d(x, nobias.weight), atol=1e-12)
    bigger = torch.randn(2, 6, 3, 3, dtype=torch.float64)
    assert torch.equal(deconv(bigger), F.conv_transpose2d(bigger, deconv.weight, deconv.bias))


def test_weighted_batch_norm_gradients_by_finite_differences():
    """The hand-written backward of weighted_batch_norm (its statistics' dependence on x included) against
    float64 finite differences, in both layouts; bf16 input (CPU autocast) against fp32."""
    torch.manual_seed(0)
    counts = torch.tensor([1, 3, 2])
    for layout in LAYOUTS:
        bn = nn.BatchNorm2d(4).double()
        with torch.no_grad():
            bn.weight.uniform_(0.5, 2), bn.bias.uniform_(-1, 1)
        x = (torch.randn(3, 4, 5, 5, dtype=torch.float64) + 3).contiguous(memory_format=layout).requires_grad_()
        assert torch.autograd.gradcheck(
            lambda x, w, b: weighted_batch_norm(x, affine(w, b), counts), (x, bn.weight, bn.bias))
        assert weighted_batch_norm(x, bn, counts).is_contiguous(memory_format=layout)
    bn = nn.BatchNorm2d(4)
    x = torch.randn(3, 4, 5, 5)
    with torch.no_grad():
        half, full = weighted_batch_norm(x.bfloat16(), bn, counts), weighted_batch_norm(x, bn, counts)
    assert half.dtype == torch.bfloat16
    # statistics in float32, the input and output rounded to bf16's 8 bits: ~2^-8 of values of a few units
    # (measured 0.9-1.3e-2 over 5 seeds on normalised values up to ~3.3); a wrong statistic is off by O(1)
    assert float((half.float() - full).abs().max()) < 0.1


def affine(weight, bias) -> SimpleNamespace:
    """What weighted_batch_norm reads of a BatchNorm2d, with the affine tensors gradcheck perturbs (no
    running-statistics update: training False)."""
    return SimpleNamespace(weight=weight, bias=bias, eps=1e-5, training=False, track_running_stats=False)
