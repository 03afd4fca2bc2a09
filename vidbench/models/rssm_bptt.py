"""CW-VAE's posterior recurrence (RSSMCell.unroll with observations) with a hand-written backward.

Why: through autograd, every recurrent step pays a weight-gradient matmul per dense layer and a bias
reduction per bias (six matmuls and four sums per step on top of the six input-gradient matmuls), each a
tiny launch-bound kernel at these sizes (batch 50, width 200: ~4 us on an H100, whose eager step ran 3,420
matmul kernels, 14 of its 41 ms of kernel time). Here the backward through time carries only the input
gradients from step to step and stacks each layer's per-step gradients, so each weight and bias gradient is
one matmul / one sum over all steps at the end: 12 matmuls per step instead of 18, and no autograd graph of
~40 nodes per step on the CPU.

The step is exactly RSSMCell's (cwvae.py): x = relu(ctx_t + W_z z), h = GRUCell(x, h), posterior MLP
relu(relu(e_t + W_h h) W2 + b2), then the fused mean/std heads, std = softplus + min_std, z = mean + std * eps.
GRU gates as torch.nn.GRUCell: r, u = sigmoid(.), n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),
h' = (1 - u) n + u h. tests/test_cwvae.py checks values and every gradient against the autograd loop.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


class PosteriorUnroll(torch.autograd.Function):
    """forward(ctx_proj [B,T,H], embed_proj [B,T,H], noise [B,T,S], z0, h0, w_z [H,S], w_ih, b_ih, w_hh, b_hh,
    w_h [H,D], w_post, b_post, head_w [2S,H], head_b, min_std) -> z, h, mean, std, each [B,T,.]."""

    @staticmethod
    def forward(ctx, ctx_proj, embed_proj, noise, z0, h0, w_z, w_ih, b_ih, w_hh, b_hh, w_h, w_post, b_post,
                head_w, head_b, min_std):
        deter = h0.shape[1]
        z, h = z0, h0
        saved = {k: [] for k in ("z_prev", "h_prev", "x", "ru", "n", "gh_n", "h", "q", "s", "raw")}
        zs, means, stds = [], [], []
        for t in range(ctx_proj.shape[1]):
            x = F.relu(torch.addmm(ctx_proj[:, t], z, w_z.t()))
            gi = torch.addmm(b_ih, x, w_ih.t())
            gh = torch.addmm(b_hh, h, w_hh.t())
            ru = torch.sigmoid(gi[:, : 2 * deter] + gh[:, : 2 * deter])
            r, u = ru.chunk(2, 1)
            gh_n = gh[:, 2 * deter :]
            n = torch.tanh(torch.addcmul(gi[:, 2 * deter :], r, gh_n))
            h_new = torch.lerp(n, h, u)  # (1 - u) n + u h
            q = F.relu(torch.addmm(embed_proj[:, t], h_new, w_h.t()))
            s = F.relu(torch.addmm(b_post, q, w_post.t()))
            mean, raw = torch.addmm(head_b, s, head_w.t()).chunk(2, 1)
            std = F.softplus(raw) + min_std
            z_new = torch.addcmul(mean, std, noise[:, t])
            for key, value in (("z_prev", z), ("h_prev", h), ("x", x), ("ru", ru), ("n", n), ("gh_n", gh_n),
                               ("h", h_new), ("q", q), ("s", s), ("raw", raw)):
                saved[key].append(value)
            zs.append(z_new), means.append(mean), stds.append(std)
            z, h = z_new, h_new
        stacked = {k: torch.stack(v) for k, v in saved.items()}  # time-major [T, B, .]
        ctx.keys = tuple(stacked)
        ctx.save_for_backward(noise, w_z, w_ih, w_hh, w_h, w_post, head_w, torch.stack(stds, 1), *stacked.values())
        # (h is returned as its own tensor: an output that is a view of a saved one would tie their versions)
        return torch.stack(zs, 1), torch.stack(saved["h"], 1), torch.stack(means, 1), torch.stack(stds, 1)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_z, g_h, g_mean, g_std):
        noise, w_z, w_ih, w_hh, w_h, w_post, head_w, std, *rest = ctx.saved_tensors
        v = dict(zip(ctx.keys, rest))
        steps, batch = v["x"].shape[:2]
        deter = v["n"].shape[2]
        dz = g_z.new_zeros(batch, w_z.shape[1])
        dh = g_h.new_zeros(batch, deter)
        grads = {k: [None] * steps for k in ("a", "gi", "gh", "p", "c", "o")}
        d_noise = [None] * steps
        aten = torch.ops.aten  # each activation's own backward kernel: one op where the formula takes two or three
        for t in reversed(range(steps)):
            dz_t = g_z[:, t] + dz
            if ctx.needs_input_grad[2]:
                d_noise[t] = dz_t * std[:, t]
            d_raw = aten.softplus_backward(torch.addcmul(g_std[:, t], dz_t, noise[:, t]), v["raw"][t], 1, 20)
            d_o = torch.cat([g_mean[:, t] + dz_t, d_raw], 1)
            d_c = aten.threshold_backward(d_o @ head_w, v["s"][t], 0)  # relu's backward
            d_p = aten.threshold_backward(d_c @ w_post, v["q"][t], 0)
            d_h = torch.addmm(g_h[:, t] + dh, d_p, w_h)
            ru, n, h_prev = v["ru"][t], v["n"][t], v["h_prev"][t]
            r, u = ru.chunk(2, 1)
            d_h_u = d_h * u  # the direct path to h_{t-1}
            d_n = aten.tanh_backward(d_h - d_h_u, n)  # d_h (1 - u), through tanh
            d_ru = aten.sigmoid_backward(torch.cat([d_n * v["gh_n"][t], d_h * (h_prev - n)], 1), ru)
            d_gi = torch.cat([d_ru, d_n], 1)
            d_gh = torch.cat([d_ru, d_n * r], 1)
            d_a = aten.threshold_backward(d_gi @ w_ih, v["x"][t], 0)
            dh = torch.addmm(d_h_u, d_gh, w_hh)
            dz = d_a @ w_z
            for key, value in (("a", d_a), ("gi", d_gi), ("gh", d_gh), ("p", d_p), ("c", d_c), ("o", d_o)):
                grads[key][t] = value
        g = {k: torch.stack(val) for k, val in grads.items()}  # time-major [T, B, .]

        def weight(d, inputs):  # sum over steps and batch of d^T x, as one matmul
            return d.flatten(0, 1).t() @ inputs.flatten(0, 1)

        return (g["a"].transpose(0, 1), g["p"].transpose(0, 1),
                torch.stack(d_noise, 1) if ctx.needs_input_grad[2] else None, dz, dh,
                weight(g["a"], v["z_prev"]), weight(g["gi"], v["x"]), g["gi"].sum((0, 1)),
                weight(g["gh"], v["h_prev"]), g["gh"].sum((0, 1)), weight(g["p"], v["h"]),
                weight(g["c"], v["q"]), g["c"].sum((0, 1)), weight(g["o"], v["s"]), g["o"].sum((0, 1)), None)
