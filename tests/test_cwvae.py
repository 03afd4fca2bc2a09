"""CW-VAE: parameter counts of the original, the clock, causality, the loss, open-loop prediction."""

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from vidbench.errors import VidbenchError
from vidbench.models import create_model, model_from_config
from vidbench.models.cwvae import PREDICT_CHUNK_FRAMES, STD_INPUT_SHIFT, fused_heads, gaussian_kl
from vidbench.models.layers import LEAKY_SLOPE

T = 10  # not a multiple of k^2 = 4: exercises the zero padding of the last block


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return create_model("cwvae", "tiny")  # 3 levels, k = 2


def observe(model, video, seed=0, **kw):
    return model.observe(video, generator=torch.Generator().manual_seed(seed), **kw)


# ---- sizes of the original (REFERENCE.md section 1, measured on the authors' TensorFlow model) ----------

@pytest.mark.parametrize("name, preset, count", [
    ("cwvae", "mmnist", 12_466_817),
    ("cwvae", "mazes", 12_470_147),
    ("cwvae", "minerl", 34_396_627),
    ("rssm", "mmnist", 5_103_009),
    ("notmpabs", "mmnist", 12_466_817),
])
def test_parameter_counts_match_the_original(name, preset, count):
    assert create_model(name, preset).num_parameters() == count


def test_family_constraints_and_overrides():
    assert create_model("notmpabs", "tiny").config["k"] == 1
    assert create_model("rssm", "tiny").config["levels"] == 1
    model = create_model("cwvae", "tiny", levels=2, k="4")  # --set values arrive as text
    assert (model.config["levels"], model.config["k"], model.context_multiple) == (2, 4, 4)
    with pytest.raises(VidbenchError, match="fixed"):
        create_model("notmpabs", "tiny", k=6)
    with pytest.raises(VidbenchError, match="unknown model option"):
        create_model("cwvae", "tiny", stochastic=3)
    with pytest.raises(VidbenchError, match="unknown preset"):
        create_model("cwvae", "ucf101")


def test_config_round_trip_rebuilds_identical_architecture(tiny):
    rebuilt = model_from_config(tiny.config)
    assert rebuilt.config == tiny.config
    rebuilt.load_state_dict(tiny.state_dict())  # strict: same names and shapes


def test_keras_initialisation(tiny):
    gru = tiny.cells[0].gru
    w = gru.weight_hh  # [3u, u]: orthogonal columns, as Keras' orthogonal recurrent kernel
    # float32 orthogonal columns, multiplied in float32: ~sqrt(96) ulps off the identity (measured 4.8e-7);
    # a non-orthogonal (e.g. Glorot) kernel is O(0.1) off.
    assert torch.allclose(w.T @ w, torch.eye(w.shape[1]), atol=1e-5)
    assert all(torch.count_nonzero(b) == 0 for n, b in tiny.named_parameters() if n.endswith("bias") or "bias_" in n)
    dense = tiny.cells[0].post_in.weight
    limit = (6 / sum(dense.shape)) ** 0.5  # glorot uniform
    # Statistical, not rounding: the max of 32 x 288 uniform draws is below 0.9 * limit with probability 0.9^9216.
    assert dense.abs().max() <= limit and dense.abs().max() > 0.9 * limit


# ---- the cell's pieces ---------------------------------------------------------------------------------

def test_fused_heads_keep_the_054_quirk():
    mean, std = nn.Linear(5, 3), nn.Linear(5, 3)
    x = torch.randn(4, 5)
    out = F.linear(x, *fused_heads(mean, std))
    # One fused float32 GEMM vs two Linear calls (and x + shift added before, not after): a few ulps of O(1)
    # values (measured 2.4e-7; allclose adds rtol 1e-5). Missing the shift is an O(0.1) change.
    assert torch.allclose(out[:, :3], mean(x), atol=1e-6)
    assert torch.allclose(out[:, 3:], std(x + STD_INPUT_SHIFT), atol=1e-6)


def test_gaussian_kl_matches_torch_distributions():
    m1, m2 = torch.randn(2, 7), torch.randn(2, 7)
    s1, s2 = torch.rand(2, 7) + 0.1, torch.rand(2, 7) + 0.1
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(m1, s1), torch.distributions.Normal(m2, s2))
    # float32 closed form vs torch.distributions' float32 formula: ulps of KLs up to ~1e3 (allclose's rtol 1e-5
    # covers those; atol covers KLs near 0). Measured: equal.
    assert torch.allclose(gaussian_kl(m1, s1, m2, s2), ref.sum(-1), atol=1e-5)


# ---- the clock ---------------------------------------------------------------------------------------------

def test_level_l_ticks_every_k_to_the_l_frames(tiny):
    levels = observe(tiny, torch.rand(2, T, 1, 64, 64))
    assert [lv["z"].shape[1] for lv in levels] == [10, 5, 3]  # ceil(T / k^l)
    assert torch.count_nonzero(levels[2]["context"]) == 0  # the top level's context is zeros
    for lower, upper in zip(levels, levels[1:]):
        upper_state = torch.cat([upper["z"], upper["h"]], -1)
        for j in range(lower["context"].shape[1]):
            # lower step j is conditioned on upper step j // k: each upper state conditions k consecutive steps
            assert torch.equal(lower["context"][:, j], upper_state[:, j // 2])
    per_frame = tiny.states_per_frame(levels, T)
    for level, states in enumerate(per_frame):
        changes = [t for t in range(1, T) if not torch.equal(states[:, t], states[:, t - 1])]
        assert changes == [t for t in range(1, T) if t % 2**level == 0]  # new state only at t = 0, k^l, 2k^l ...


def test_block_embedding_sums_whole_blocks_and_sees_no_later_frame(tiny):
    video = torch.rand(1, T, 1, 64, 64)
    later = video.clone()
    later[:, 6:] = torch.rand_like(later[:, 6:])
    a, b = tiny.encode(video), tiny.encode(later)
    assert torch.equal(a[1][:, :3], b[1][:, :3])  # level 1 blocks [0,2) [2,4) [4,6) end before frame 6
    # "Changed": allclose's defaults only rule out rounding; new frames move the embedding by >= 1e-2 (measured).
    assert not torch.allclose(a[1][:, 3], b[1][:, 3])
    assert torch.equal(a[2][:, :1], b[2][:, :1]) and not torch.allclose(a[2][:, 1], b[2][:, 1])


def test_posterior_never_sees_frames_after_its_block(tiny):
    video = torch.rand(2, 12, 1, 64, 64)
    later = video.clone()
    later[:, 8:] = torch.rand_like(later[:, 8:])  # frame 8 starts the third top-level block (k^2 = 4)
    a, b = observe(tiny, video), observe(tiny, later)
    for level in range(3):
        first_changed = 8 // 2**level
        for key in ("z", "h", "post_mean", "post_std", "prior_mean"):
            assert torch.equal(a[level][key][:, :first_changed], b[level][key][:, :first_changed]), (level, key)
        # changed: by >= 1e-2 at every level (measured), far outside allclose's default rounding tolerance
        assert not torch.allclose(a[level]["post_mean"][:, first_changed], b[level]["post_mean"][:, first_changed])


def test_prediction_never_sees_frames_after_the_context(tiny):
    video = torch.rand(1, 12, 1, 64, 64)
    other = video.clone()
    other[:, 8:] = torch.rand_like(other[:, 8:])
    predict = lambda v: tiny.predict(v[:, :8], 6, generator=torch.Generator().manual_seed(3))  # noqa: E731
    assert torch.equal(predict(video), predict(other))
    changed_context = video.clone()
    changed_context[:, 7] = torch.rand_like(changed_context[:, 7])
    assert not torch.equal(predict(video), predict(changed_context))


# ---- loss and prediction ---------------------------------------------------------------------------------------

def test_loss_is_nll_plus_kl_per_frame(tiny):
    video = torch.rand(2, T, 1, 64, 64)
    torch.manual_seed(5)
    logs = tiny.loss(video)
    # allclose's default rtol 1e-5: a float32 sum of the same four scalars (measured equal).
    assert torch.allclose(logs["loss"], logs["nll"] + logs["kl_l0"] + logs["kl_l1"] + logs["kl_l2"])
    torch.manual_seed(5)
    levels = tiny.observe(video)
    mean = tiny.decode(torch.cat([levels[0]["z"], levels[0]["h"]], -1))
    nll = -torch.distributions.Normal(mean, 1.0).log_prob(video).sum() / 2 / T  # mmnist-style std 1.0
    # The same float32 terms summed in another order (82k pixels; a whole-tensor sum's order also depends on the
    # thread count): ~1e-7 relative, measured 1.1e-7. Dropping the normaliser or the / T is a > 10% change.
    assert torch.allclose(logs["nll"], nll, rtol=1e-5)
    assert torch.allclose(logs["kl_l1"], levels[1]["kl"].sum() / 2 / T)


def test_nll_with_a_decoder_std_other_than_one():
    torch.manual_seed(0)
    model = create_model("cwvae", "tiny", dec_std=0.1).train()  # the mazes / kth / demo std
    video = torch.rand(2, T, 1, 64, 64)
    torch.manual_seed(5)
    nll = model.loss(video)["nll"]
    torch.manual_seed(5)
    levels = model.observe(video)
    mean = model.decode(torch.cat([levels[0]["z"], levels[0]["h"]], -1))
    expected = -torch.distributions.Normal(mean, 0.1).log_prob(video).sum() / 2 / T
    # as above (float32 sums in another order); a std applied once instead of squared is off by ~10x
    assert torch.allclose(nll, expected, rtol=1e-5)


def test_prior_levels_follow_their_prior_in_the_context(tiny):
    context = torch.rand(1, 8, 1, 64, 64)
    levels = observe(tiny, context, prior_levels=(2,))
    assert "kl" not in levels[2] and "kl" in levels[1]
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    normal = tiny.predict(context, 4, generator=gen())
    assert not torch.equal(normal, tiny.predict(context, 4, generator=gen(), prior_levels=(2,)))


def test_long_horizon_is_generated_in_bounded_chunks(tiny):
    states = [(z[:1], h[:1]) for z, h in tiny.zero_state(1, torch.zeros(1))]
    sizes = [chunk.shape[1] for chunk in tiny.rollout(states, 1000)]
    assert sum(sizes) == 1000 and max(sizes) <= PREDICT_CHUNK_FRAMES


def test_predict_rejects_context_that_is_not_whole_blocks(tiny):
    with pytest.raises(VidbenchError, match="not a multiple of 4"):
        tiny.predict(torch.rand(1, 6, 1, 64, 64), 3)


def test_loss_falls_on_moving_mnist():
    from conftest import mmnist_clips

    video = mmnist_clips(4, 8)
    torch.manual_seed(0)
    model = create_model("cwvae", "tiny")
    opt = torch.optim.Adam(model.parameters(), lr=model.config["lr"], eps=1e-4)
    # The Gaussian normaliser (0.5 log 2 pi per pixel, std 1) is a constant 3764 nats per frame: track the rest.
    constant = 64 * 64 * 0.5 * np.log(2 * np.pi)
    losses = []
    for _ in range(24):
        opt.zero_grad()
        loss = model.loss(video)["loss"]
        loss.backward()
        opt.step()
        losses.append(loss.item() - constant)
    # A learned quantity: the ratio mean(last 4) / first over seeds 0-21 ranged 0.58-0.84 (mean 0.75, sd 0.08;
    # seed 0: 0.793 on ATen default, AVX2 and AVX512 kernels alike), so the old 0.85 was 0.2 sd above the worst
    # seed. Without learning (lr 0) it is 0.994-1.003. 0.92 sits between (0.08 from each), 2.2 sd above the mean.
    assert np.mean(losses[-4:]) < 0.92 * losses[0], losses


def test_fast_decoder_equals_the_plain_transposed_convs(tiny):
    from vidbench.models.fast_layers import conv_transpose_stride2

    for k, pad in ((5, 0), (6, 0), (4, 1)):  # CW-VAE's decoder; VTA's last layer (k4, padding 1)
        w, b, x = torch.randn(6, 3, k, k), torch.randn(3), torch.randn(2, 6, 7, 7)
        # Two float32 algorithms (sub-pixel convs vs oneDNN's deconvolution) summing up to 6 x 3 x 3 products of
        # N(0, 1) values: a few ulps, but oneDNN's ISA changes them. Measured up to 7.6e-6 abs, and 30% of the old
        # atol 1e-5 (+ rtol 1e-5 |value|) with ONEDNN_MAX_CPU_ISA=AVX2: 5e-5 is ~10x that; a wrong tap is O(1).
        fast, plain = conv_transpose_stride2(x, w, b, pad), F.conv_transpose2d(x, w, b, stride=2, padding=pad)
        assert fast.shape == plain.shape and torch.allclose(fast, plain, atol=5e-5)
    for k, pad, layout in ((5, 0, torch.contiguous_format), (6, 0, torch.channels_last), (4, 1, torch.channels_last)):
        # its gradients: the native backward
        x = torch.randn(2, 3, 4, 4, dtype=torch.float64).contiguous(memory_format=layout).requires_grad_()
        w = torch.randn(3, 2, k, k, dtype=torch.float64).contiguous(memory_format=layout).requires_grad_()
        b = torch.randn(2, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(conv_transpose_stride2, (x, w, b, pad))  # float64 finite differences
        assert torch.autograd.gradcheck(conv_transpose_stride2, (x, w, None, pad))  # without a bias (SVG's skips)
        assert conv_transpose_stride2(x, w, b, pad).is_contiguous(memory_format=layout)
    dec = tiny.decoder
    states = torch.randn(3, dec.dense.in_features)
    x = dec.dense(states)[:, :, None, None]
    for deconv in dec.deconvs:  # torch's own transposed convs, the first one (a matmul in the decoder) too
        x = F.leaky_relu(nn.ConvTranspose2d.forward(deconv, x), LEAKY_SLOPE)
    assert torch.allclose(dec(states), torch.tanh(dec.out(x)), atol=1e-5)  # as above, tanh-bounded: measured 2e-8
    # channels-last weights (CPU training) take the first layer's matmul in the weight's own tap order
    cl = copy.deepcopy(dec).to(memory_format=torch.channels_last)
    states.requires_grad_()
    outs = [m(states) for m in (dec, cl)]
    grads = [torch.autograd.grad(o.square().sum(), [states, m.deconvs[0].weight, m.deconvs[0].bias])
             for o, m in zip(outs, (dec, cl))]
    # float32, the same products summed in other orders by other kernels: measured up to 1.5e-8 on values and
    # 4e-7 of the largest gradient over 5 seeds (~250x below the bounds, room for other ISAs); a permuted tap
    # or bias would be O(1)
    assert torch.allclose(outs[0], outs[1], atol=1e-5)
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4 * float(a.abs().max())), float((a - b).abs().max())


def test_transposed_conv_with_its_bias_apart_equals_the_native_one():
    from vidbench.models.fast_layers import conv_transpose_bias_apart

    for k, layout in ((5, torch.contiguous_format), (6, torch.channels_last)):  # the decoder's middle layers
        x = torch.randn(2, 3, 4, 4, dtype=torch.float64).contiguous(memory_format=layout).requires_grad_()
        w = torch.randn(3, 2, k, k, dtype=torch.float64).contiguous(memory_format=layout).requires_grad_()
        b = torch.randn(2, dtype=torch.float64, requires_grad=True)
        apart = conv_transpose_bias_apart(x, w, b, 2, 0)
        # float64: the same products, the bias added after the sum instead of before it (~1e-15 measured)
        assert torch.allclose(apart, F.conv_transpose2d(x, w, b, stride=2), atol=1e-12)
        assert torch.autograd.gradcheck(lambda *a: conv_transpose_bias_apart(*a, 2, 0), (x, w, b))
    x, w, b = torch.randn(2, 3, 8, 8), torch.randn(3, 2, 5, 5), torch.randn(2)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast keeps the native call, bit for bit (a bias
        # added to the bf16-rounded output rounds differently)
        assert torch.equal(conv_transpose_bias_apart(x, w, b, 2, 0), F.conv_transpose2d(x, w, b, stride=2))


def test_decoder_under_cpu_bf16_autocast_splits_its_middle_layers(tiny, monkeypatch):
    dec = copy.deepcopy(tiny.decoder).to(memory_format=torch.channels_last)
    states = torch.randn(3, dec.dense.in_features)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        x = dec.dense(states)[:, :, None, None]
        for deconv in dec.deconvs:
            x = F.leaky_relu(deconv(x), LEAKY_SLOPE)
        plain = torch.tanh(dec.out(x))
        for deconv in dec.deconvs[1:]:  # the split form (conv + pixel shuffle), not the module's own forward
            monkeypatch.setattr(deconv, "forward", lambda *a: pytest.fail("native transposed conv under autocast"))
        fast = dec(states)
    assert fast.dtype == plain.dtype == torch.bfloat16
    # bf16 keeps 8 bits: the two algorithms may round each layer's sums differently (measured at most 1.2e-4
    # over 20 seeds of the tiny decoder, i.e. one bf16 ulp near 0.03; tanh-bounded outputs); 1e-2 is ~2 ulps
    # at 0.5 and far above that, while a wrong tap or a lost layer is O(0.1-1).
    assert float((fast.float() - plain.float()).abs().max()) < 1e-2


def test_top_level_embedding_sums_before_its_last_layer(tiny):
    """encode() applies the top MLP's last (linear) layer to block sums, with one bias per real frame: equal
    to the authors' order (the whole MLP per frame, then zero-padded block sums). T = 10 leaves the last
    top-level block (4 frames) with 2 real frames. float32 rounding of a reordered sum: 1e-5 relative."""
    model = copy.deepcopy(tiny)
    with torch.no_grad():
        for mlp in model.level_mlps:  # Keras initialises biases to 0: make them count
            mlp[-1].bias.normal_()
    video = torch.rand(2, 10, 1, 64, 64)
    embeds = model.encode(video)
    hidden = embeds[0]
    for level, mlp in enumerate(model.level_mlps, start=1):
        hidden = mlp(hidden)
        block = model.k**level
        padded = F.pad(hidden, (0, 0, 0, -10 % block))
        expected = padded.view(2, -1, block, hidden.shape[-1]).sum(2)
        assert embeds[level].shape == expected.shape
        assert torch.allclose(embeds[level], expected, rtol=1e-5, atol=1e-5 * float(expected.detach().abs().max()))
