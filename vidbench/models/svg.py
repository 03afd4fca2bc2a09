"""SVG-LP (Denton & Fergus 2018): stochastic video generation with a learned prior.

The paper's image-space autoregressive baseline: every predicted frame is decoded, then encoded again as
the next step's input. Facts from the public code (edenton/svg: models/dcgan_64.py, models/lstm.py,
train_svg_lp.py, generate_svg_lp.py; REFERENCE.md section 5):

- DCGAN-64 encoder: four stride-2 convs (64 -> 32 -> 16 -> 8 -> 4; widths nf, 2nf, 4nf, 8nf, nf = 64) with
  BatchNorm + LeakyReLU(0.2), then a 4x4 valid conv to g_dim = 128 with BatchNorm + tanh. The decoder mirrors
  it; each up-block also takes the encoder activation of the same size from the skip frame (U-Net style);
  sigmoid output.
- frame predictor: Linear embed -> 2 LSTMCells of 256 -> Linear -> tanh (g_dim); posterior q(z_t | x_t) and
  learned prior p(z_t | x_{t-1}): Linear embed -> 1 LSTMCell of 256 -> Linear mean / Linear log-variance;
  z = 10 (the SVG paper's single-layer q and p; 13M parameters at this size, Table D.2 of the CW-VAE paper).
- loss = sum over steps of MSE(x_hat_t, x_t) (mean over pixels) + beta * KL(q || p) (summed over z, mean
  over the batch), beta = 1e-4; Adam lr 2e-3 there, beta1 0.9. DCGAN initialisation (N(0, 0.02) weights, BatchNorm
  scales N(1, 0.02)) as the public init_weights.
- training is teacher-forced (the encoder sees ground-truth x_{t-1}); skips come from the input frame while it
  is ground-truth context and are then frozen at the last context frame (`train_context` frames).

Prediction (predict()): the context is consumed like the public generation script: for each context step the
posterior is sampled on the true next frame and the prior's LSTM is stepped too; after the context, z comes
from the learned prior and each decoded frame is fed back in. Skips come from the last ground-truth context
frame. Two deliberate differences from generate_svg_lp.py:
- BatchNorm uses its running (eval) statistics. The public script keeps the encoder and decoder in train()
  mode while generating, so its BatchNorm normalises with the statistics of the current generation batch
  (predictions depend on which videos share the batch). Here a video's prediction depends only on its own
  context and the random generator.
- The public code takes skips from frame n_past - 2 (the encoder input at the last context step, one frame
  before the last context frame) in both training and generation; here they come from the last context frame
  itself, consistently in training (frame train_context - 1) and prediction (frame Tc - 1).

Settings inside the CW-VAE paper's baseline tuning ranges (learning rate in [1e-4, 1e-3], decoder std in
[0.1, 1]; issue 12): the preset's lr is 1e-3, the range's end nearest the public 2e-3. The MSE + beta KL loss
is a Gaussian decoder with std sqrt(beta * P / 2) (P = pixels x channels per frame, the MSE being a mean):
0.45 at 64x64x1 and 0.78 at 64x64x3 with beta 1e-4, both inside the range. `dec_std` (None: beta as published)
sets that std instead: beta = 2 dec_std^2 / P, so `vidbench sweep` can tune SVG like the other families.

In training, all frames of a batch are encoded (and all predictions decoded) in one batched call, so
BatchNorm statistics span B x T frames rather than the public code's B frames per step. The teacher-forced
posterior, prior and predictor each run as one multi-layer LSTM call over all steps (LSTMStack.sequence; the
same weights and math as the step-by-step cells, tested against them in tests/test_svg.py).

    vidbench train svg --preset mmnist          # 13M parameters
    create_model("svg", "tiny")                 # tests
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.nn import functional as F

from vidbench.errors import VidbenchError
from vidbench.models.base import VideoModel, preset_config
from vidbench.models.fast_layers import (
    PixelConvTranspose2d,
    SmallOutputConv2d,
    conv_transpose_bias_apart,
    conv_transpose_stride2,
    memory_format_of,
)

LEAKY_SLOPE = 0.2  # dcgan_64.py
PRESETS = {
    "mmnist": {"channels": 1},
    "mazes": {"channels": 3},
    "minerl": {"channels": 3},
    "kth": {"channels": 1},  # CW-VAE paper: SVG needed the slower VGG encoder on KTH; here DCGAN for all
    "tiny": {"channels": 1, "filters": 8, "g_dim": 16, "rnn_size": 32, "z_dim": 4, "train_context": 4},
}
DEFAULTS = {
    "filters": 64, "g_dim": 128, "rnn_size": 256, "predictor_layers": 2, "posterior_layers": 1,
    "prior_layers": 1, "z_dim": 10, "beta": 1e-4, "dec_std": None,
    "lr": 1e-3,  # the public 2e-3 is outside the CW-VAE paper's tuning range [1e-4, 1e-3] (see the docstring)
    "adam_eps": 1e-8,  # torch.optim.Adam's default, as the public code (vidbench's trainer defaults to TF's 1e-4)
    # Skips are frozen at the last context frame; 36 = the evaluation protocols' context length.
    "train_context": 36,
}


def normal_noise(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise shaped like `like`, drawn from `generator` (on its own device) when given."""
    if generator is None:
        return torch.randn_like(like)
    return torch.randn(like.shape, generator=generator, device=generator.device, dtype=like.dtype).to(like.device)


def dcgan_init_(module: nn.Module) -> nn.Module:
    """The public code's init_weights: conv/linear N(0, 0.02) and zero bias; BatchNorm scale N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return module


def _block(conv: nn.Module, width: int) -> nn.Sequential:
    return nn.Sequential(conv, nn.BatchNorm2d(width), nn.LeakyReLU(LEAKY_SLOPE))


class DCGANEncoder(nn.Module):
    """[N, C, 64, 64] -> (h [N, g_dim] in (-1, 1), skips: activations at 32, 16, 8, 4 pixels)."""

    def __init__(self, channels: int, filters: int, g_dim: int):
        super().__init__()
        widths = [channels, filters, 2 * filters, 4 * filters, 8 * filters]
        self.downs = nn.ModuleList(_block(nn.Conv2d(a, b, 4, 2, 1), b) for a, b in zip(widths, widths[1:]))
        self.out = nn.Sequential(SmallOutputConv2d(widths[-1], g_dim, 4, 1, 0), nn.BatchNorm2d(g_dim), nn.Tanh())

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips, x = [], frames
        for down in self.downs:
            x = down(x)
            skips.append(x)
        return self.out(x).flatten(1), skips


class DCGANDecoder(nn.Module):
    """(h [N, g_dim], skip terms) -> frames [N, C, 64, 64] in (0, 1).

    Each up-block is a transposed conv of its input concatenated with the same-size skip; being linear, it is
    the sum of one conv of the input (the first half of the weight's input channels) and one of the skip
    (the second half). skip_terms() computes the skip halves once per skip frame, so frames that share a skip
    (every predicted frame: the skip is frozen at the last context frame) share that half of the work, forward
    and backward: at the mmnist preset (36 context frames) 36 skip frames per 100-frame video instead of 99,
    and the decoder's skip half of every rollout step."""

    def __init__(self, channels: int, filters: int, g_dim: int):
        super().__init__()
        self.inp = _block(PixelConvTranspose2d(g_dim, 8 * filters, 4, 1, 0), 8 * filters)
        widths = [8 * filters, 4 * filters, 2 * filters, filters]
        # Each up-block sees its input concatenated with the same-size skip, hence 2 * a input channels.
        self.ups = nn.ModuleList(_block(nn.ConvTranspose2d(2 * a, b, 4, 2, 1), b) for a, b in zip(widths, widths[1:]))
        self.out = nn.Sequential(nn.ConvTranspose2d(2 * filters, channels, 4, 2, 1), nn.Sigmoid())

    def _stages(self):
        return [*self.ups, self.out]  # their skips: the encoder's activations at 4, 8, 16, 32 pixels

    def skip_terms(self, skips: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Encoder activations of the skip frames (DCGANEncoder's skips, [S, ...] each) -> per stage the skip
        half's output [S, ...] and the weight's input half, both from one split (one backward node, whose
        gradient is one concatenation; two slices would each fill a zero tensor of the whole weight)."""
        terms = []
        for stage, skip in zip(self._stages(), skips[::-1]):
            conv = stage[0]
            w_input, w_skip = conv.weight.split(conv.in_channels // 2)
            if stage is self.out and skip.device.type == "cpu":  # 64 -> 1 channels, as in forward()
                term = conv_transpose_stride2(skip, w_skip, None, conv.padding[0])
            else:
                term = F.conv_transpose2d(skip, w_skip, None, conv.stride, conv.padding)
            terms.append((term, w_input))
        return terms

    def forward(self, h: torch.Tensor, terms: list[tuple[torch.Tensor, torch.Tensor]],
                frames: int | None = None) -> torch.Tensor:
        """terms from skip_terms(). frames None: one skip frame per row of h. Otherwise h holds videos of
        `frames` frames each (video-major) and the terms the same videos' first U skip frames: frame f takes
        skip min(f, U - 1) (SVG's rule: the input frame while it is context, then the last context frame)."""
        x = self.inp(h[:, :, None, None])
        for stage, (term, w_input) in zip(self._stages(), terms):
            conv = stage[0]
            if stage is self.out and x.device.type == "cpu":  # 64 -> 1 channels: oneDNN's slow case (fast_layers.py)
                y = conv_transpose_stride2(x, w_input, conv.bias, conv.padding[0])
            else:
                y = conv_transpose_bias_apart(x, w_input, conv.bias, conv.stride, conv.padding)
            x = stage[1:](y + term if frames is None else _AddSharedSkip.apply(y, term, frames))
        return x


class _FirstFrames(torch.autograd.Function):
    """x [B*T, ...] (video-major) -> its first n frames of each video [B*n, ...], in x's memory format both
    ways: slicing a view through autograd gave a gradient in the default layout, and adding that to the
    channels-last encoder's own gradient took 155 ms a step (SVG, 4 x 100 frames)."""

    @staticmethod
    def forward(ctx, x, frames, n):
        ctx.frames, ctx.n, ctx.format = frames, n, memory_format_of(x)
        return x.view(-1, frames, *x.shape[1:])[:, :n].flatten(0, 1).contiguous(memory_format=ctx.format)

    @staticmethod
    def backward(ctx, grad):
        full = torch.empty((grad.shape[0] // ctx.n * ctx.frames, *grad.shape[1:]), dtype=grad.dtype,
                           device=grad.device, memory_format=ctx.format)
        full_v = full.view(-1, ctx.frames, *grad.shape[1:])
        full_v[:, : ctx.n] = grad.view(-1, ctx.n, *grad.shape[1:])
        full_v[:, ctx.n :].zero_()  # only the frames the slice left out
        return full, None, None


class _AddSharedSkip(torch.autograd.Function):
    """y [B*F, ...] + term [B*U, ...] where frame f of each video adds that video's term min(f, U - 1): one
    pass forward; backward passes y's gradient through and sums the shared term's over its frames (a gather
    and its index_put backward cost 25 + 100 ms a step at 4 x 100; autograd through in-place slices, more)."""

    @staticmethod
    def forward(ctx, y, term, frames):
        out = torch.empty_like(y)  # y's memory format (channels-last on CPU)
        y_v, out_v = y.view(-1, frames, *y.shape[1:]), out.view(-1, frames, *y.shape[1:])
        term_v = term.view(y_v.shape[0], -1, *term.shape[1:])
        last = term_v.shape[1] - 1
        torch.add(y_v[:, :last], term_v[:, :last], out=out_v[:, :last])
        torch.add(y_v[:, last:], term_v[:, last:], out=out_v[:, last:])  # broadcast over the shared frames
        ctx.frames, ctx.last = frames, last
        ctx.term_format = memory_format_of(term)
        return out

    @staticmethod
    def backward(ctx, grad):
        grad_v = grad.view(-1, ctx.frames, *grad.shape[1:])
        # written straight into the term's layout: a cat (default layout) and a copy back to channels-last had
        # cost 78 ms a step at 4 x 100 against 12 this way (the same values, bit for bit)
        d_term = torch.empty((grad_v.shape[0] * (ctx.last + 1), *grad.shape[1:]), dtype=grad.dtype,
                             device=grad.device, memory_format=ctx.term_format)
        d_term_v = d_term.view(grad_v.shape[0], ctx.last + 1, *grad.shape[1:])
        d_term_v[:, : ctx.last].copy_(grad_v[:, : ctx.last])
        torch.sum(grad_v[:, ctx.last :], 1, out=d_term_v[:, ctx.last])
        return grad, d_term, None


class LSTMStack(nn.Module):
    """Linear embedding followed by stacked LSTMCells (models/lstm.py); state is a list of (h, c)."""

    def __init__(self, in_features: int, hidden: int, layers: int):
        super().__init__()
        self.hidden = hidden
        self.embed = nn.Linear(in_features, hidden)
        self.cells = nn.ModuleList(nn.LSTMCell(hidden, hidden) for _ in range(layers))

    def initial_state(self, batch: int, like: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        zeros = like.new_zeros(batch, self.hidden)
        return [(zeros, zeros) for _ in self.cells]

    def forward(self, x: torch.Tensor, state: list) -> tuple[torch.Tensor, list]:
        h, new_state = self.embed(x), []
        for cell, hc in zip(self.cells, state):
            hc = cell(h, hc)
            new_state.append(hc)
            h = hc[0]
        return h, new_state

    def sequence(self, x: torch.Tensor) -> torch.Tensor:
        """All steps of a sequence x [B, T, in] from the zero state -> top-layer outputs [B, T, hidden].

        The same math as forward() step by step (LSTMCell and the LSTM kernel share the gate order i, f, g, o
        and the two biases), as one fused multi-layer LSTM call over the cells' own weights: the input
        projections of all steps are one matmul, and the per-step Python and autograd nodes go away."""
        weights = [w for cell in self.cells for w in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)]
        zeros = x.new_zeros(len(self.cells), x.shape[0], self.hidden)
        with warnings.catch_warnings():
            # cuDNN copies the cells' separate weights into one buffer per call (~0.5 M numbers, microseconds on
            # a GPU) and warns each time; the cells keep their own parameters (checkpoints, the step-by-step
            # forward() of prediction), so the copy is accepted and its warning silenced
            warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous")
            out, _, _ = torch.lstm(self.embed(x), (zeros, zeros), weights, True, len(self.cells), 0.0,
                                   self.training, False, True)
        return out


class GaussianLSTM(nn.Module):
    """LSTMStack -> (mean, log-variance) of a diagonal Gaussian."""

    def __init__(self, in_features: int, out_features: int, hidden: int, layers: int):
        super().__init__()
        self.rnn = LSTMStack(in_features, hidden, layers)
        self.mean = nn.Linear(hidden, out_features)
        self.logvar = nn.Linear(hidden, out_features)

    def forward(self, x: torch.Tensor, state: list) -> tuple[torch.Tensor, torch.Tensor, list]:
        h, state = self.rnn(x, state)
        return self.mean(h), self.logvar(h), state

    def sequence(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.rnn.sequence(x)
        return self.mean(h), self.logvar(h)


def gaussian_kl(mu_q, logvar_q, mu_p, logvar_p) -> torch.Tensor:
    """KL(N(mu_q, var_q) || N(mu_p, var_p)) per element."""
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p) ** 2) / logvar_p.exp() - 1)


class SVGLP(VideoModel):
    def __init__(self, config: dict):
        super().__init__(config)
        c = self.config
        self.encoder = DCGANEncoder(c["channels"], c["filters"], c["g_dim"])
        self.decoder = DCGANDecoder(c["channels"], c["filters"], c["g_dim"])
        self.posterior = GaussianLSTM(c["g_dim"], c["z_dim"], c["rnn_size"], c["posterior_layers"])
        self.prior = GaussianLSTM(c["g_dim"], c["z_dim"], c["rnn_size"], c["prior_layers"])
        self.predictor = LSTMStack(c["g_dim"] + c["z_dim"], c["rnn_size"], c["predictor_layers"])
        self.predictor_out = nn.Sequential(nn.Linear(c["rnn_size"], c["g_dim"]), nn.Tanh())
        dcgan_init_(self)

    def _states(self, batch: int, like: torch.Tensor) -> dict:
        return {"posterior": self.posterior.rnn.initial_state(batch, like),
                "prior": self.prior.rnn.initial_state(batch, like),
                "predictor": self.predictor.initial_state(batch, like)}

    def _predict_h(self, h_prev: torch.Tensor, z: torch.Tensor, states: dict) -> torch.Tensor:
        out, states["predictor"] = self.predictor(torch.cat([h_prev, z], 1), states["predictor"])
        return self.predictor_out(out)

    def loss(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        B, T = video.shape[:2]
        if T < 2:
            raise VidbenchError(f"svg: training clips need at least 2 frames, got {T}")
        h, skips = self.encoder(video.flatten(0, 1))
        h = h.view(B, T, -1)
        # Teacher forcing: the posterior reads x_t, the prior x_{t-1} and the predictor [x_{t-1}, z_t], all
        # known before the recurrence runs, so each network is one LSTM over all T-1 steps. The noise is
        # drawn one [B, z] step at a time, as the step-by-step loop drew it, so a seed gives the same z.
        mu, logvar = self.posterior.sequence(h[:, 1:])
        mu_p, logvar_p = self.prior.sequence(h[:, :-1])
        noise = torch.stack([torch.randn_like(mu[:, 0]) for _ in range(T - 1)], 1)
        z = mu + (0.5 * logvar).exp() * noise
        predicted = self.predictor_out(self.predictor.sequence(torch.cat([h[:, :-1], z], 2)))
        kl = gaussian_kl(mu, logvar, mu_p, logvar_p).sum(2).mean(0)  # per step: summed over z, batch mean
        # Frame t is decoded with skips from frame min(t-1, n_past-1): the input frame while it is context.
        n_past = min(self.config["train_context"], T - 1)
        terms = self.decoder.skip_terms([_FirstFrames.apply(s, T, n_past) for s in skips])
        frames = self.decoder(predicted.flatten(0, 1), terms, T - 1).view(B, T - 1, *video.shape[2:])
        mse = ((frames - video[:, 1:]) ** 2).flatten(2).mean(2).mean(0)  # per step, as nn.MSELoss per step
        return {"loss": mse.sum() + self.beta(video[0, 0].numel()) * kl.sum(), "mse": mse.mean(), "kl": kl.mean()}

    def beta(self, pixels: int) -> float:
        """KL weight: the published beta, or 2 dec_std^2 / pixels for a Gaussian decoder of std dec_std."""
        std = self.config.get("dec_std")
        return self.config["beta"] if std is None else 2.0 * float(std) ** 2 / pixels

    @torch.no_grad()
    def predict(self, context: torch.Tensor, horizon: int, num_samples: int = 1,
                generator: torch.Generator | None = None) -> torch.Tensor:
        self.check_context(context)
        if context.shape[1] < 1:
            raise VidbenchError("svg: predict() needs at least one context frame")
        with self.evaluating():  # BatchNorm running statistics: see the module docstring
            frames = self._rollout(context.repeat_interleave(num_samples, 0), horizon, generator)
        return frames.view(context.shape[0], num_samples, horizon, *context.shape[2:])

    def _rollout(self, context: torch.Tensor, horizon: int, generator) -> torch.Tensor:
        N, Tc = context.shape[:2]
        h, skips = self.encoder(context.flatten(0, 1))
        h = h.view(N, Tc, -1)
        terms = self.decoder.skip_terms([s.view(N, Tc, *s.shape[1:])[:, -1] for s in skips])  # the last context frame
        states = self._states(N, h)
        for t in range(1, Tc):  # condition on the context: posterior z on the true frame, prior stepped too
            mu, logvar, states["posterior"] = self.posterior(h[:, t], states["posterior"])
            _, _, states["prior"] = self.prior(h[:, t - 1], states["prior"])
            self._predict_h(h[:, t - 1], mu + (0.5 * logvar).exp() * normal_noise(mu, generator), states)
        h_prev, out = h[:, -1], []
        for t in range(horizon):
            mu_p, logvar_p, states["prior"] = self.prior(h_prev, states["prior"])
            z = mu_p + (0.5 * logvar_p).exp() * normal_noise(mu_p, generator)
            frame = self.decoder(self._predict_h(h_prev, z, states), terms)
            out.append(frame)
            if t + 1 < horizon:
                h_prev = self.encoder(frame)[0]  # the generated frame is the next step's input
        return torch.stack(out, 1)


def svg(preset: str = "mmnist", **overrides) -> SVGLP:
    return SVGLP(preset_config("svg", preset, overrides, PRESETS, DEFAULTS))


svg.presets = tuple(PRESETS)
