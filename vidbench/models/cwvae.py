"""Clockwork VAE (Saxena et al. 2021) in PyTorch, faithful to the authors' TensorFlow code.

Structure (REFERENCE.md section 1; authors' cwvae.py, cnns.py, cells.py at commit 62dd505):
- a conv encoder per frame; level l >= 1 stacks a per-frame MLP on level l-1's MLP output, then sums
  non-overlapping blocks of k^l frames (time zero-padded at the end), so level l has ceil(T / k^l) steps;
- one RSSM cell per level; the top level's context is zeros, a lower level's context is [z, h] of the
  level above repeated k times (each upper state conditions k consecutive lower states);
- the decoder reads level 0's [z, h]; its tanh output is the mean of a Gaussian with a fixed std.

Output range: the decoder ends in tanh ([-1, 1], the authors' choice) while frames lie in [0, 1]. The loss
uses the raw tanh output as the Gaussian mean, exactly as the original; predict() clamps it to [0, 1]
(values below 0 are impossible frames, and a trained model puts almost no mass there).

NoTmpAbs is the same model with k = 1; the paper's RSSM baseline is the same code with one level.

Beyond the VideoModel interface (for the analyses and the tests):
    observe(video, prior_levels=(), generator=None) -> per level (bottom first) dict of [B, T_l, ...]:
        z, h, prior_mean/std, post_mean/std, kl (KL per step), context, last
    states_per_frame(levels, T)  -> per level the [z, h] each frame sees (the clock made visible)
    predict(..., prior_levels=(2,))  -> level 2 follows its prior over the context too (authors' use_obs)
    rollout(states, horizon, generator) -> level-0 [z, h] chunks of the open-loop prior rollout
Note on causality: a block's embedding sees only its own frames, but a lower level's posterior also sees
the upper level's state, whose block is longer: every posterior state sees no frame after the end of the
top-level block it lies in (tests/test_cwvae.py checks exactly that).

Speed notes: everything that does not depend on the recurrence is batched over time outside the loop
(the context and embedding halves of the first dense layers, the prior heads during training, the noise),
and each mean/std head pair is one matmul (the +0.54 input shift is folded into the std bias). Training's
posterior recurrence has a hand-written backward through time (rssm_bptt.py): its weight gradients are one
matmul per layer over all steps, not one per step.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from vidbench.errors import VidbenchError
from vidbench.models.base import VideoModel
from vidbench.models.layers import IMAGE_SIZE, ConvDecoder, ConvEncoder, keras_init_
from vidbench.models.rssm_bptt import PosteriorUnroll

STD_INPUT_SHIFT = 0.54  # authors' cells.py: the std head reads (hidden + 0.54), a quirk kept for fidelity
PREDICT_CHUNK_FRAMES = 72  # frames decoded at a time in predict(): memory stays flat in the horizon

# Authors' configs/*.yml (base_config.yml for the shared values). lr is the preset's Adam learning rate,
# stored here so the trainer can use it as its default; the model itself ignores it.
COMMON = dict(levels=3, k=6, enc_dense_layers=3, enc_dense_size=1000, filters=32, min_std=1e-4)
PRESETS = {
    "mmnist": dict(channels=1, stoch=20, deter=200, hidden=200, dec_std=1.0, lr=3e-4),
    "mazes": dict(channels=3, stoch=20, deter=200, hidden=200, dec_std=0.1, lr=3e-4),
    "minerl": dict(channels=3, stoch=100, deter=800, hidden=800, dec_std=0.4, lr=1e-4),
    # KTH (our choice; the paper gives no KTH settings): grayscale, so 1 channel; a small dataset (~600
    # videos) of one person on a plain background, so the mmnist sizes; natural images, so the decoder std
    # of the other natural-video set of the same size (mazes, 0.1) rather than mmnist's 1.0.
    "kth": dict(channels=1, stoch=20, deter=200, hidden=200, dec_std=0.1, lr=3e-4),
    # Tests and the CPU demo: 3 levels with k=2 keep the clockwork (context multiple 4) at a tiny cost.
    "tiny": dict(channels=1, levels=3, k=2, stoch=8, deter=32, hidden=32, enc_dense_size=64, filters=8,
                 dec_std=1.0, lr=1e-3),
    # The CPU demo (2.5M parameters, ~0.6 s per step of 16 x 36 frames on 2 cores): between tiny and the
    # paper's sizes. Decoder std 0.1 (inside the paper's tuning range [0.1, 1]) weights reconstruction enough
    # that posterior reconstructions show digits within minutes; open-loop priors need far longer (measured:
    # after 1,400 steps they still lose the digits; the paper trained 300 epochs).
    "demo": dict(channels=1, levels=3, k=2, stoch=20, deter=128, hidden=128, enc_dense_size=256, filters=16,
                 dec_std=0.1, lr=1e-3),
}
PRESET_NAMES = tuple(PRESETS)


def gaussian_kl(mean1, std1, mean2, std2) -> torch.Tensor:
    """KL(N1 || N2) of diagonal Gaussians, summed over the last axis; in float32 even under autocast."""
    mean1, std1, mean2, std2 = (x.float() for x in (mean1, std1, mean2, std2))
    var_ratio = (std1 / std2) ** 2
    term = ((mean1 - mean2) / std2) ** 2
    return 0.5 * (var_ratio + term - 1 - torch.log(var_ratio)).sum(-1)


def block_sums(x: torch.Tensor, block: int) -> torch.Tensor:
    """[B,T,F] -> [B,ceil(T/block),F]: sums over consecutive blocks of frames, the end zero-padded."""
    b, t = x.shape[:2]
    pad = -t % block
    return F.pad(x, (0, 0, 0, pad)).view(b, (t + pad) // block, block, -1).sum(2)


def fused_heads(mean_layer: nn.Linear, std_layer: nn.Linear) -> tuple[torch.Tensor, torch.Tensor]:
    """One [2S, H] matmul for the mean and std heads; std_layer(x + 0.54) = W x + (b + 0.54 * W 1)."""
    weight = torch.cat([mean_layer.weight, std_layer.weight], 0)
    bias = torch.cat([mean_layer.bias, std_layer.bias + STD_INPUT_SHIFT * std_layer.weight.sum(1)], 0)
    return weight, bias


class RSSMCell(nn.Module):
    """One level's cell (authors' cells.py). Layer names follow the original's dense layers."""

    # Training's posterior pass differentiates through PosteriorUnroll's hand-written backward (rssm_bptt.py:
    # one weight-gradient matmul per layer instead of one per step); False runs the same steps through autograd.
    hand_written_backward = True

    def __init__(self, stoch: int, deter: int, hidden: int, context: int, embed: int, min_std: float):
        super().__init__()
        self.stoch, self.deter, self.min_std = stoch, deter, min_std
        self.prior_in = nn.Linear(stoch + context, hidden)  # input [z_{t-1}, context]
        self.gru = nn.GRUCell(hidden, deter)  # = Keras GRUCell(reset_after=True) up to gate order
        self.prior_out = nn.Linear(deter, hidden)
        self.prior_mean = nn.Linear(hidden, stoch)
        self.prior_std = nn.Linear(hidden, stoch)
        self.post_in = nn.Linear(deter + embed, hidden)  # input [h_t, e_t]
        self.post_hidden = nn.Linear(hidden, hidden)
        self.post_mean = nn.Linear(hidden, stoch)
        self.post_std = nn.Linear(hidden, stoch)

    def split_heads(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, raw = out.chunk(2, -1)
        return mean, F.softplus(raw) + self.min_std

    def prior_stats(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Prior mean/std from h (any leading shape): batched over time in training."""
        return self.split_heads(F.linear(F.relu(self.prior_out(h)), *fused_heads(self.prior_mean, self.prior_std)))

    def unroll(self, context: torch.Tensor, embed: torch.Tensor | None, state, noise: torch.Tensor) -> dict:
        """Run T steps. context [B,T,Cx], embed [B,T,E] or None (then the prior drives the state),
        state (z [B,S], h [B,D]), noise [B,T,S]. Returns per-step tensors [B,T,...] and the last state."""
        if torch.is_autocast_enabled(context.device.type):  # --amp: the recurrence stays fp32 (train/step.py)
            with torch.autocast(context.device.type, enabled=False):
                return self.unroll(context.float(), None if embed is None else embed.float(),
                                   tuple(s.float() for s in state), noise.float())
        z, h = state
        w_z, w_ctx = self.prior_in.weight.split([self.stoch, self.prior_in.in_features - self.stoch], 1)
        w_z_t = w_z.t()
        ctx_proj = F.linear(context, w_ctx, self.prior_in.bias)  # the context half, for all steps at once
        if embed is not None:
            w_h, w_e = self.post_in.weight.split([self.deter, self.post_in.in_features - self.deter], 1)
            w_h_t = w_h.t()
            embed_proj = F.linear(embed, w_e, self.post_in.bias)
            head_w, head_b = fused_heads(self.post_mean, self.post_std)
        else:
            head_w, head_b = fused_heads(self.prior_mean, self.prior_std)
        if embed is not None and self.hand_written_backward and torch.is_grad_enabled() and context.shape[1]:
            z, h, mean, std = PosteriorUnroll.apply(ctx_proj, embed_proj, noise, z, h, w_z, self.gru.weight_ih,
                                                    self.gru.bias_ih, self.gru.weight_hh, self.gru.bias_hh, w_h,
                                                    self.post_hidden.weight, self.post_hidden.bias, head_w, head_b,
                                                    self.min_std)
            prior_mean, prior_std = self.prior_stats(h)
            return {"z": z, "h": h, "last": (z[:, -1], h[:, -1]), "post_mean": mean, "post_std": std,
                    "prior_mean": prior_mean, "prior_std": prior_std}
        zs, hs, means, stds = [], [], [], []
        for t in range(context.shape[1]):
            h = self.gru(F.relu(torch.addmm(ctx_proj[:, t], z, w_z_t)), h)
            if embed is not None:  # posterior: shares h_t with the prior; sees the context only through h_t
                x = F.relu(self.post_hidden(F.relu(torch.addmm(embed_proj[:, t], h, w_h_t))))
            else:
                x = F.relu(self.prior_out(h))
            mean, std = self.split_heads(F.linear(x, head_w, head_b))
            z = torch.addcmul(mean, std, noise[:, t])
            zs.append(z), hs.append(h), means.append(mean), stds.append(std)
        out = {"z": torch.stack(zs, 1), "h": torch.stack(hs, 1), "last": (z, h)}
        if embed is not None:
            out["post_mean"], out["post_std"] = torch.stack(means, 1), torch.stack(stds, 1)
            out["prior_mean"], out["prior_std"] = self.prior_stats(out["h"])
        else:
            out["prior_mean"], out["prior_std"] = torch.stack(means, 1), torch.stack(stds, 1)
        return out


class CWVAE(VideoModel):
    cuda_graphs_refusal = None  # its step computes on tensors only (captured against eager in tests/test_cuda.py)

    def __init__(self, config: dict):
        super().__init__(config)
        c = self.config
        self.levels, self.k, self.stoch, self.deter = c["levels"], c["k"], c["stoch"], c["deter"]
        self.context_multiple = self.k ** (self.levels - 1)
        self.raw_output = True  # predict(raw=True): the unclipped decoder output (the *_cwvae conventions score it)
        self.encoder = ConvEncoder(c["channels"], c["filters"])
        feat = self.encoder.out_features
        # Level l >= 1: Dense(size, relu) x (layers-1), then Dense(feat) linear (authors' cnns.Encoder).
        self.level_mlps = nn.ModuleList()
        for _ in range(1, self.levels):
            sizes = [feat] + [c["enc_dense_size"]] * (c["enc_dense_layers"] - 1) + [feat]
            layers = []
            for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
                layers.append(nn.Linear(a, b))
                if i < len(sizes) - 2:
                    layers.append(nn.ReLU())
            self.level_mlps.append(nn.Sequential(*layers))
        state = self.stoch + self.deter
        self.cells = nn.ModuleList(
            RSSMCell(self.stoch, self.deter, c["hidden"], state, feat, c["min_std"]) for _ in range(self.levels)
        )
        self.decoder = ConvDecoder(state, c["channels"], c["filters"])
        keras_init_(self)

    # ---- encoding -------------------------------------------------------------------------------------
    def encode(self, video: torch.Tensor) -> list[torch.Tensor]:
        """video [B,T,C,H,W] -> per level l the block embeddings [B, ceil(T/k^l), F]."""
        b, t = video.shape[:2]
        hidden = self.encoder(video.reshape(b * t, *video.shape[2:])).view(b, t, -1)
        embeds = [hidden]
        for level, mlp in enumerate(self.level_mlps, start=1):
            block = self.k**level
            if level < self.levels - 1:  # the next level's MLP reads this one's per-frame output
                hidden = mlp(hidden)
                embeds.append(block_sums(hidden, block))
            else:
                # The top MLP's last layer is linear and only its block sums are used: sum first, then apply
                # it once per block (a block of n real frames gets n biases). Same values, and the largest
                # matmul of the top level shrinks from T rows to T / k^l.
                out = mlp[-1]
                counts = block_sums(hidden.new_ones(1, t, 1), block)  # real frames per block (the end is padded)
                embeds.append(F.linear(block_sums(mlp[:-1](hidden), block), out.weight) + counts * out.bias)
        return embeds

    def zero_state(self, batch: int, like: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(like.new_zeros(batch, self.stoch), like.new_zeros(batch, self.deter)) for _ in range(self.levels)]

    # Set by the trainer under DDP to (first row, global batch): every rank then draws the whole global
    # batch's training noise from the same seed and keeps its own rows, so N ranks match one process.
    noise_rows: tuple[int, int] | None = None

    def _noise(self, batch, steps, like, generator):
        """Standard normal noise for `steps` steps, drawn on the generator's device (so a CPU generator
        drives a GPU model, and a seed gives the same samples on every device)."""
        device = generator.device if generator is not None else like.device
        if generator is None and self.noise_rows is not None:
            first, total = self.noise_rows
            noise = torch.randn(total, steps, self.stoch, device=device)[first : first + batch]
        else:
            noise = torch.randn(batch, steps, self.stoch, generator=generator, device=device)
        return noise.to(like.device, like.dtype if like.dtype.is_floating_point else torch.float32)

    # ---- filtering over observed frames ---------------------------------------------------------------
    def observe(self, video: torch.Tensor, prior_levels=(), generator: torch.Generator | None = None) -> list[dict]:
        """Posterior pass over a video (the training pass, and pass 1 of open-loop prediction).

        Returns one dict per level, bottom first, with [B, T_l, ...] tensors: "z", "h" (the state the level
        keeps for its k^l frames), "prior_mean/std", "post_mean/std", "kl" ([B, T_l]), "context" (what
        the level was conditioned on), and "last" (final (z, h)). Levels in `prior_levels` run on their
        prior instead of their posterior (the authors' use_obs=False): no post_* or kl for them.
        """
        b, t = video.shape[:2]
        embeds = self.encode(video)
        states = self.zero_state(b, video)
        context = video.new_zeros(b, embeds[-1].shape[1], self.stoch + self.deter)  # top context: zeros
        out: list[dict] = [{} for _ in range(self.levels)]
        for level in reversed(range(self.levels)):
            steps = embeds[level].shape[1]
            context = context[:, :steps]
            use_obs = level not in prior_levels
            res = self.cells[level].unroll(context, embeds[level] if use_obs else None, states[level],
                                           self._noise(b, steps, video, generator))
            res["context"] = context
            if use_obs:
                res["kl"] = gaussian_kl(res["post_mean"], res["post_std"], res["prior_mean"], res["prior_std"])
            out[level] = res
            context = torch.cat([res["z"], res["h"]], -1).repeat_interleave(self.k, 1)
        return out

    def states_per_frame(self, levels: list[dict], frames: int) -> list[torch.Tensor]:
        """observe() output -> per level [B, frames, S+D]: the [z, h] each frame sees at that level
        (level l's step j holds for frames j*k^l ... (j+1)*k^l - 1)."""
        return [torch.cat([res["z"], res["h"]], -1).repeat_interleave(self.k**level, 1)[:, :frames]
                for level, res in enumerate(levels)]

    def decode(self, states: torch.Tensor) -> torch.Tensor:
        """Level-0 [z, h] [B,T,S+D] -> tanh frames [B,T,C,H,W] in [-1, 1]."""
        b, t = states.shape[:2]
        return self.decoder(states.reshape(b * t, -1)).view(b, t, self.config["channels"], IMAGE_SIZE, IMAGE_SIZE)

    # ---- training objective ---------------------------------------------------------------------------
    def loss(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        """Negative ELBO / T (authors' compute_losses): Gaussian NLL with fixed std summed over pixels and
        time, plus every level's KL summed over its steps; both averaged over the batch."""
        b, t = video.shape[:2]
        levels = self.observe(video)
        mean = self.decode(torch.cat([levels[0]["z"], levels[0]["h"]], -1)).float()  # float32 under autocast
        std = self.config["dec_std"]
        # sum over pixels of 0.5 ((x - mean) / std)^2 + log std + 0.5 log 2 pi, with the squares summed by one
        # fused kernel (forward and backward) instead of six passes over the frames
        squares = F.mse_loss(mean, video.to(mean.dtype), reduction="sum")
        nll = (0.5 / std**2 * squares + video.numel() * (math.log(std) + 0.5 * math.log(2 * math.pi))) / b
        logs = {"nll": nll / t}
        kl_total = 0.0
        for level, res in enumerate(levels):
            kl = res["kl"].sum() / b
            logs[f"kl_l{level}"] = kl / t
            kl_total = kl_total + kl
        logs["kl"] = kl_total / t
        logs["loss"] = (nll + kl_total) / t
        return logs

    forward = loss  # so DistributedDataParallel(model)(video) runs the loss

    # ---- open-loop prediction -------------------------------------------------------------------------
    def rollout(self, states, horizon: int, generator=None):
        """Pass 2 of the authors' open_loop_unroll: every level follows its prior from `states` (one (z, h)
        per level, updated in place); the top context is zeros. Yields level-0 [z, h] chunks [B, n, S+D]
        of whole top-level blocks, so memory does not grow with the horizon."""
        top_block = self.k ** (self.levels - 1)
        chunk_top = max(1, PREDICT_CHUNK_FRAMES // top_block)
        total_top = -(-horizon // top_block)
        like, batch = states[0][1], states[0][1].shape[0]
        done = 0
        for first in range(0, total_top, chunk_top):
            n_top = min(chunk_top, total_top - first)
            context = like.new_zeros(batch, n_top, self.stoch + self.deter)
            for level in reversed(range(self.levels)):
                steps = n_top * self.k ** (self.levels - 1 - level)
                res = self.cells[level].unroll(context, None, states[level], self._noise(batch, steps, like, generator))
                states[level] = res["last"]
                context = torch.cat([res["z"], res["h"]], -1)
                if level:
                    context = context.repeat_interleave(self.k, 1)
            keep = min(context.shape[1], horizon - done)
            done += keep
            yield context[:, :keep]

    @torch.no_grad()
    def predict(self, context: torch.Tensor, horizon: int, num_samples: int = 1,
                generator: torch.Generator | None = None, prior_levels=(), raw: bool = False) -> torch.Tensor:
        """Open-loop prediction as the authors' eval: posteriors over the context (levels in `prior_levels`
        follow their prior there instead, for `vidbench analyze levels`), then priors forward from the last
        states at every level; generated frames are never fed back. Output clamped from tanh to [0, 1], or with
        raw=True the decoder's unclipped tanh output, which the authors' eval scored."""
        self.check_context(context)
        if not set(prior_levels) <= set(range(self.levels)):
            raise VidbenchError(f"{self.config['name']}: prior_levels {tuple(prior_levels)} outside levels 0..{self.levels - 1}")
        b, c = context.shape[0], context.shape[2]
        video = context.repeat_interleave(num_samples, 0)
        if video.shape[1]:
            states = [res["last"] for res in self.observe(video, prior_levels, generator)]
        else:  # no context: start from the zero initial states, as at the start of a training sequence
            states = self.zero_state(video.shape[0], video)
        out = video.new_empty(video.shape[0], horizon, c, IMAGE_SIZE, IMAGE_SIZE)
        start = 0
        for chunk in self.rollout(states, horizon, generator):
            frames = self.decode(chunk)
            out[:, start : start + chunk.shape[1]] = frames if raw else frames.clamp_(0, 1)
            start += chunk.shape[1]
        return out.view(b, num_samples, horizon, c, IMAGE_SIZE, IMAGE_SIZE)


def _coerce(key: str, value, default):
    """`--set k=4` arrives as text; keep every config value the type of its preset default."""
    try:
        if isinstance(default, bool):
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
        if isinstance(default, int):
            if float(value) != int(float(value)):
                raise ValueError
            return int(float(value))
        if isinstance(default, float):
            return float(value)
    except (TypeError, ValueError):
        raise VidbenchError(f"model option {key}={value!r}: expected a {type(default).__name__}") from None
    return value


def build(family: str, preset: str, overrides: dict, fixed: dict | None = None) -> CWVAE:
    if preset not in PRESETS:
        raise VidbenchError(f"{family}: unknown preset {preset!r}; choose from {', '.join(PRESET_NAMES)}")
    config = {**COMMON, **PRESETS[preset]}
    overrides = {key: v for key, v in overrides.items() if key != "name"}
    unknown = sorted(set(overrides) - set(config))
    if unknown:
        raise VidbenchError(f"{family}: unknown model option(s) {', '.join(unknown)}; known: {', '.join(sorted(config))}")
    for key, value in overrides.items():
        config[key] = _coerce(key, value, config[key])
    for key, value in (fixed or {}).items():
        if config[key] != value and key in overrides:
            raise VidbenchError(f"{family}: {key} is fixed to {value} for this family (got {config[key]}); use cwvae")
        config[key] = value
    if config["levels"] < 1 or config["k"] < 1:
        raise VidbenchError(f"{family}: levels and k must be >= 1 (got levels={config['levels']}, k={config['k']})")
    if config["enc_dense_layers"] < 1:
        raise VidbenchError(f"{family}: enc_dense_layers must be >= 1 (got {config['enc_dense_layers']})")
    return CWVAE({"name": family, "preset": preset, **config})


def cwvae(preset: str = "mmnist", **overrides) -> CWVAE:
    return build("cwvae", preset, overrides)


def notmpabs(preset: str = "mmnist", **overrides) -> CWVAE:
    """CW-VAE without temporal abstraction: every level ticks every frame (k = 1)."""
    return build("notmpabs", preset, overrides, fixed={"k": 1})


def rssm(preset: str = "mmnist", **overrides) -> CWVAE:
    """The paper's RSSM baseline: the same code with one level."""
    return build("rssm", preset, overrides, fixed={"levels": 1})


for _factory in (cwvae, notmpabs, rssm):
    _factory.presets = PRESET_NAMES
