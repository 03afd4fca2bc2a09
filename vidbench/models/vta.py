"""VTA (Kim, Ahn & Bengio 2019): variational temporal abstraction, a two-level hierarchical RSSM.

The low (observation) level steps every frame; a binary boundary variable m_t decides whether a new segment
starts at t ("read"), in which case the upper (abstract) level takes a step and the low level's belief is
re-initialised from the upper feature; otherwise the upper state is copied and the low level's GRU continues.
Facts from the public code (taesupkim/vta, read through forks such as ronly2460/variational_temporal_abstraction
and masa-su/pixyzoo HRSSM; REFERENCE.md section 5):

- ELU convs with BatchNorm and 128 channels; the encoder output, beliefs and features are all 128 wide;
  stochastic states of 8; Normal(mean, sigmoid std) for every state; GRU cells for every recurrence.
- the posterior boundary comes from a stack of 1-D convs (kernel 3, `boundary_layers` = 3) over the encoded
  frames; the prior boundary from a linear layer on the low-level feature of the previous step. Boundaries
  are Gumbel-softmax samples, hard (one-hot) in the forward pass with straight-through gradients; the
  temperature follows temp_min + (temp_max - temp_min) * 0.999 ** (step / temp_anneal) = 1 -> 0.1 with
  temp_anneal = 100 (train.py there). The step counter is a buffer, so a resumed checkpoint keeps the
  schedule. The boundary KL is log q(sample) - log p(sample) under the two concrete densities.
- the upper posterior at a segment start t uses a forward GRU over the frames before t and a backward GRU
  over the frames of the segment (reset at each boundary); the low posterior uses a forward GRU over the
  frames of the current segment and the upper feature.
- training windows: init_size = 5 frames warm the forward recurrence, seq_size = 20 frames are modelled,
  init_size more close the backward recurrence (all three forced to be boundaries); at most 5 segments of at
  most 8 frames per window. Loss: Gaussian NLL (obs_std 1.0, summed over pixels) + upper KL at reads + lower
  KL + boundary KL, each averaged over steps; Adam with amsgrad, lr 5e-4, gradient-norm clip 10.
- 64x64 frames: one more stride-2 layer each way than the public 32x32 code (64 -> 32 -> 16 -> 8 -> 4 -> 1).

Adaptations (vidbench):
- frames are mapped from [0, 1] to [-1, 1] for the tanh decoder; the public 5-bit quantisation with uniform
  dequantisation noise is not applied (8-bit frames, like the other models here).
- a training clip longer than one window (the 100-frame sequences of the CW-VAE paper) is cut into windows of
  init_size + seq_size + init_size frames at stride seq_size, so consecutive windows model consecutive
  frames; the windows become extra batch rows. Segment limits hold per window.
- the segment limits are enforced on the sampled posterior boundaries as well as on the prior, with a
  look-ahead (limit_masks): a step is forced to read when the current segment cannot grow or the rest of the
  window would not fit otherwise, forced to copy when no further segment fits. The public code forces only
  the prior (read at max_seg_len, copy after max_seg_num segments, length winning when both bind) and lets
  the boundary KL push the posterior; here a training window never breaks either limit. Forced steps get the
  same near-deterministic logits (probability 1 - 1e-3) in prior and posterior, so they add no boundary KL.
- predict(): the last init_size context frames drive the forward posterior recurrence from a zero state,
  whose last state initialises the upper belief (as the public full_generation); then everything is sampled
  from the priors. Training warms that recurrence up on exactly init_size frames from zero at the start of
  every window, so prediction uses the same regime (warming up on all 36 context frames would run the GRU
  for 7x more steps than it ever saw in training); the earlier context frames are not used. With fewer
  context frames than init_size, all of them are used. Boundaries are
  sampled from the prior's Bernoulli(softmax(logits)), which is the distribution of the hard Gumbel sample
  used in training at any temperature (the public generation takes the arg max in eval mode). Over long
  horizons the limits apply per block of seq_size predicted frames (the training window's length): the
  segment count restarts at each block, the current segment's length carries across blocks, so segments are
  never longer and never denser than in training. BatchNorm uses running statistics.

    vidbench train vta --preset mmnist          # 2.8M parameters (paper: 3M)
    create_model("vta", "tiny")                 # tests
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Normal, kl_divergence
from torch.nn import functional as F

from vidbench.errors import VidbenchError
from vidbench.models.base import VideoModel, preset_config
from vidbench.models.fast_layers import (
    ELU,
    PixelConvTranspose2d,
    SmallOutputConv2d,
    conv_transpose_stride2,
    weighted_batch_norm,
)
from vidbench.models.svg import normal_noise
from vidbench.models.vta_boundaries import concrete_log_density, forced_logits, limit_masks, uniform_noise

PRESETS = {
    "mmnist": {"channels": 1},
    "mazes": {"channels": 3},
    "minerl": {"channels": 3},
    "kth": {"channels": 1},
    "tiny": {"channels": 1, "feat_size": 16, "state_size": 4, "boundary_layers": 1, "seq_size": 8, "init_size": 2},
}
DEFAULTS = {
    "feat_size": 128, "state_size": 8, "boundary_layers": 3, "max_seg_num": 5, "max_seg_len": 8,
    "seq_size": 20, "init_size": 5, "obs_std": 1.0, "temp_max": 1.0, "temp_min": 0.1, "temp_anneal": 100.0,
    "lr": 5e-4, "amsgrad": True, "grad_clip": 10.0,
    "adam_eps": 1e-8,  # torch.optim.Adam's default, as the public code (vidbench's trainer defaults to TF's 1e-4)
}
READ, COPY = 0, 1  # one-hot order of the boundary variable


def _conv(a, b, k, s, p, transposed=False) -> nn.Sequential:
    # the Pixel forms: the encoder's last conv (4x4 -> 1x1) and the decoder's first (1x1 -> 4x4) as matmuls
    conv = (PixelConvTranspose2d if transposed else SmallOutputConv2d)(a, b, k, s, p, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(b), ELU())


class Encoder(nn.Module):
    """[N, C, 64, 64] -> [N, F]: four stride-2 convs then a 4x4 valid conv, ELU + BatchNorm.

    forward(frames, counts): in training, frame n stands for counts[n] identical frames in the BatchNorm
    statistics (the overlapping training windows encode each frame once; see VTA.encode_windows)."""

    def __init__(self, channels: int, feat: int):
        super().__init__()
        self.net = nn.Sequential(_conv(channels, feat, 4, 2, 1), *[_conv(feat, feat, 4, 2, 1) for _ in range(3)],
                                 _conv(feat, feat, 4, 1, 0), nn.Flatten())

    def forward(self, frames, counts: torch.Tensor | None = None):
        if counts is None or not self.training:
            return self.net(frames)
        x = frames
        for conv, bn, act in self.net[:-1]:
            x = act(weighted_batch_norm(conv(x), bn, counts))
        return x.flatten(1)


class Decoder(nn.Module):
    """[N, F] -> tanh frames [N, C, 64, 64] in [-1, 1]."""

    def __init__(self, channels: int, feat: int):
        super().__init__()
        self.net = nn.Sequential(_conv(feat, feat, 4, 1, 0, True), *[_conv(feat, feat, 4, 2, 1, True) for _ in range(3)],
                                 nn.ConvTranspose2d(feat, channels, 4, 2, 1), nn.Tanh())

    def forward(self, feat):
        x = self.net[:-2](feat[:, :, None, None])
        out = self.net[-2]
        if x.device.type != "cpu":  # the split form is a CPU (oneDNN) speed-up, as for CW-VAE's decoder
            return torch.tanh(out(x))
        return torch.tanh(conv_transpose_stride2(x, out.weight, out.bias, padding=1))


class LatentDistribution(nn.Module):
    """Normal(Linear(x), sigmoid(Linear(x)))."""

    def __init__(self, in_features: int, size: int):
        super().__init__()
        self.mean, self.std = nn.Linear(in_features, size), nn.Linear(in_features, size)

    def forward(self, x) -> Normal:
        return Normal(self.mean(x), torch.sigmoid(self.std(x)))


class VTA(VideoModel):
    # a capture would also freeze the temperature into the graph as a constant
    cuda_graphs_refusal = "its temperature schedule reads the step counter on the host every step"

    def __init__(self, config: dict):
        super().__init__(config)
        c = self.config
        F_, S = c["feat_size"], c["state_size"]
        self.encoder, self.decoder = Encoder(c["channels"], F_), Decoder(c["channels"], F_)
        layers = []
        for _ in range(c["boundary_layers"]):
            layers += [nn.Conv1d(F_, F_, 3, 1, 1, bias=False), nn.BatchNorm1d(F_), ELU()]
        self.post_boundary = nn.Sequential(*layers, nn.Conv1d(F_, 2, 3, 1, 1))
        self.prior_boundary = nn.Linear(F_, 2)
        self.abs_feat, self.obs_feat = nn.Linear(F_ + S, F_), nn.Linear(F_ + S, F_)
        self.update_abs, self.update_obs = nn.GRUCell(S, F_), nn.GRUCell(S + F_, F_)
        self.abs_post_fwd, self.abs_post_bwd, self.obs_post_fwd = (nn.GRUCell(F_, F_) for _ in range(3))
        self.prior_abs, self.prior_obs = LatentDistribution(F_, S), LatentDistribution(F_, S)
        self.post_abs, self.post_obs = LatentDistribution(2 * F_, S), LatentDistribution(2 * F_, S)
        # Training steps taken: drives the temperature schedule and is saved with the checkpoint.
        self.register_buffer("train_step", torch.zeros((), dtype=torch.long))

    def temperature(self) -> float:
        c = self.config
        return c["temp_min"] + (c["temp_max"] - c["temp_min"]) * 0.999 ** (self.train_step.item() / c["temp_anneal"])

    # ---- training ---------------------------------------------------------------------------------------

    def windows(self, video: torch.Tensor) -> torch.Tensor:
        """[B, T, ...] -> [B * W, L, ...]: windows of L = 2 * init_size + seq_size frames at stride seq_size."""
        init = self.config["init_size"]
        T = video.shape[1]
        if T < 2 * init + 2:
            raise VidbenchError(f"vta: training clips need at least {2 * init + 2} frames "
                                f"(2 x init_size {init} + 2), got {T}")
        return video[:, self.window_index(T)].flatten(0, 1)

    def window_index(self, frames: int) -> torch.Tensor:
        """[W, L] frame indices of the training windows of a `frames`-long clip (checked by windows())."""
        init, seq = self.config["init_size"], self.config["seq_size"]
        length = min(2 * init + seq, frames)
        starts = torch.arange(0, frames - length + 1, length - 2 * init)
        return starts[:, None] + torch.arange(length)

    def encode_windows(self, video: torch.Tensor) -> torch.Tensor:
        """encoder(windows(video) * 2 - 1) [B * W, L, F], encoding each frame once and gathering the windows (3/4
        of the frames at 100 per clip); BatchNorm counts each frame as often as the windows hold it."""
        B, T = video.shape[:2]
        index = self.window_index(T)
        used, inverse = torch.unique(index, return_inverse=True)  # sorted frames, and where each window reads
        counts = torch.bincount(inverse.flatten(), minlength=len(used)).repeat(B)
        frames = video[:, used.to(video.device)] * 2 - 1
        enc = self.encoder(frames.flatten(0, 1), counts.to(video.device)).view(B, len(used), -1)
        return enc[:, inverse.to(video.device)].flatten(0, 1)

    def sample_boundaries(self, logits: torch.Tensor, temp: float) -> tuple[torch.Tensor, ...]:
        """Posterior boundaries for a window with the segment limits enforced.

        logits [N, L, 2] -> (boundary [N, L, 2] hard one-hot with straight-through gradients,
        log_sample [N, L, 2] the relaxed sample's log-probabilities, forced_read / forced_copy [N, L] bool).
        The warm-up frames, the first modelled frame and the closing frames are always reads.
        """
        c = self.config
        # Sampled in fp32 whatever the autocast: bf16 noise has 256 levels below 1, so a bf16 run would draw
        # other Gumbel samples (and other boundaries) than fp32 for the same seed.
        logits = logits.float()
        N, L = logits.shape[:2]
        init, seq = c["init_size"], L - 2 * c["init_size"]
        seg_len = logits.new_zeros(N)
        seg_num = logits.new_zeros(N)
        boundary, log_sample, f_read, f_copy = [], [], [], []
        for t in range(L):
            forced_read, forced_copy = limit_masks(seg_len, seg_num, init + seq - t, c["max_seg_len"], c["max_seg_num"])
            if t <= init or t >= init + seq:  # warm-up, first modelled and closing frames
                forced_read, forced_copy = torch.ones_like(forced_read), torch.zeros_like(forced_copy)
            logit = forced_logits(forced_read, forced_copy, logits[:, t])
            gumbel = -torch.log(-torch.log(torch.rand_like(logit).clamp(1e-4, 1 - 1e-4)))
            log_soft = F.log_softmax((logit + gumbel) / temp, -1)
            soft = log_soft.exp()
            hard = F.one_hot(soft.argmax(-1), 2).to(soft)
            b = hard + soft - soft.detach()
            # Forced steps take the forced value exactly (their near-deterministic sample could still flip).
            forced = F.one_hot(forced_copy.long(), 2).to(soft)  # READ where forced_read, COPY where forced_copy
            is_forced = (forced_read | forced_copy)[:, None]
            hard, b = torch.where(is_forced, forced, hard), torch.where(is_forced, forced, b)
            boundary.append(b)
            log_sample.append(log_soft)
            f_read.append(forced_read)
            f_copy.append(forced_copy)
            if t > init:  # counts over the modelled frames; the window's first modelled frame starts segment 1
                is_read = hard[:, READ]
                seg_len = torch.where(is_read > 0, torch.ones_like(seg_len), seg_len + 1)
                seg_num = seg_num + is_read
            elif t == init:
                seg_len, seg_num = seg_len + 1, seg_num + 1
        return (torch.stack(boundary, 1), torch.stack(log_sample, 1), torch.stack(f_read, 1),
                torch.stack(f_copy, 1))

    def inference(self, windows: torch.Tensor, enc: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Posterior pass over windows [N, L, C, H, W] in [0, 1]: per-step terms of the ELBO. `enc`: the
        windows' encoded frames [N, L, F] when already computed (loss() shares them across overlaps)."""
        c = self.config
        N, L = windows.shape[:2]
        init, seq = c["init_size"], L - 2 * c["init_size"]
        temp = self.temperature()
        x = windows * 2 - 1
        if enc is None:
            enc = self.encoder(x.flatten(0, 1)).view(N, L, -1)
        post_logits = self.post_boundary(enc.transpose(1, 2)).transpose(1, 2)
        boundary, log_sample, forced_read, forced_copy = self.sample_boundaries(post_logits, temp)
        read = boundary[..., READ:READ + 1]

        # Posterior recurrences: upper forward over all frames, upper backward and lower forward reset at reads.
        zeros = enc.new_zeros(N, c["feat_size"])
        abs_fwd, obs_fwd, abs_bwd = [], [], [None] * L
        h_abs, h_obs, h_bwd = zeros, zeros, zeros
        for t in range(L):
            h_abs = self.abs_post_fwd(enc[:, t], h_abs)
            h_obs = self.obs_post_fwd(enc[:, t], (1 - read[:, t]) * h_obs)
            abs_fwd.append(h_abs)
            obs_fwd.append(h_obs)
            tb = L - 1 - t
            h_bwd = self.abs_post_bwd(enc[:, tb], h_bwd)
            abs_bwd[tb] = h_bwd
            h_bwd = (1 - read[:, tb]) * h_bwd  # the segment starting at tb ends here going backward

        state0 = enc.new_zeros(N, c["state_size"])
        abs_belief, abs_state, obs_belief, obs_state = zeros, state0, zeros, state0
        feats, kl_abs, kl_obs, prior_logits = [], [], [], []
        for t in range(init, init + seq):
            r = read[:, t]
            if t == init:
                abs_belief = abs_fwd[t - 1] if init > 0 else zeros
            else:
                abs_belief = r * self.update_abs(abs_state, abs_belief) + (1 - r) * abs_belief
            prior_abs = self.prior_abs(abs_belief)
            post_abs = self.post_abs(torch.cat([abs_fwd[t - 1] if t > 0 else zeros, abs_bwd[t]], 1))
            abs_state = r * post_abs.rsample() + (1 - r) * abs_state
            abs_feat = self.abs_feat(torch.cat([abs_belief, abs_state], 1))
            obs_belief = r * abs_feat + (1 - r) * self.update_obs(torch.cat([obs_state, abs_feat], 1), obs_belief)
            prior_obs = self.prior_obs(obs_belief)
            post_obs = self.post_obs(torch.cat([obs_fwd[t], abs_feat], 1))
            obs_state = post_obs.rsample()
            obs_feat = self.obs_feat(torch.cat([obs_belief, obs_state], 1))
            feats.append(obs_feat)
            kl_abs.append(kl_divergence(post_abs, prior_abs).sum(-1) * r.detach().squeeze(1))
            kl_obs.append(kl_divergence(post_obs, prior_obs).sum(-1))
            prior_logits.append(self.prior_boundary(obs_feat))  # for the boundary at t + 1

        # Boundary KL over the sampled boundaries t = init+1 .. init+seq-1 (the others are fixed reads).
        sampled = slice(init + 1, init + seq)
        prior_logits = torch.stack(prior_logits[:-1], 1)
        prior_logits = forced_logits(forced_read[:, sampled].flatten(), forced_copy[:, sampled].flatten(),
                                     prior_logits.flatten(0, 1)).view_as(prior_logits)
        post_forced = forced_logits(forced_read[:, sampled].flatten(), forced_copy[:, sampled].flatten(),
                                    post_logits[:, sampled].flatten(0, 1)).view_as(prior_logits)
        kl_mask = (concrete_log_density(post_forced, log_sample[:, sampled], temp)
                   - concrete_log_density(prior_logits, log_sample[:, sampled], temp))

        recon = self.decoder(torch.stack(feats, 1).flatten(0, 1)).view(N, seq, *windows.shape[2:])
        target = x[:, init:init + seq]
        nll = -Normal(recon, c["obs_std"]).log_prob(target).flatten(2).sum(2)
        return {"nll": nll, "kl_abs": torch.stack(kl_abs, 1), "kl_obs": torch.stack(kl_obs, 1), "kl_mask": kl_mask,
                "boundaries": boundary[:, init:init + seq, READ].detach(), "recon": (recon + 1) / 2,
                "temperature": torch.tensor(temp)}

    def loss(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.training and torch.is_grad_enabled():
            self.train_step += 1  # the public loop updates the temperature before each step
        windows = self.windows(video)
        terms = self.inference(windows, self.encode_windows(video))
        init = self.config["init_size"]
        target = windows[:, init:init + terms["nll"].shape[1]]
        loss = terms["nll"].mean() + terms["kl_abs"].mean() + terms["kl_obs"].mean() + terms["kl_mask"].mean()
        return {"loss": loss, "nll": terms["nll"].mean().detach(), "mse": ((terms["recon"] - target) ** 2).mean().detach(),
                "kl_abs": terms["kl_abs"].mean().detach(), "kl_obs": terms["kl_obs"].mean().detach(),
                "kl_mask": terms["kl_mask"].mean().detach(), "segments": terms["boundaries"].sum(1).mean(),
                "temperature": terms["temperature"]}

    # ---- prediction -------------------------------------------------------------------------------------

    @torch.no_grad()
    def predict(self, context: torch.Tensor, horizon: int, num_samples: int = 1,
                generator: torch.Generator | None = None) -> torch.Tensor:
        self.check_context(context)
        if context.shape[1] < 1:
            raise VidbenchError("vta: predict() needs at least one context frame")
        with self.evaluating():  # BatchNorm running statistics
            frames, _ = self.rollout(context.repeat_interleave(num_samples, 0), horizon, generator)
        return frames.view(context.shape[0], num_samples, horizon, *context.shape[2:])

    def rollout(self, context: torch.Tensor, horizon: int, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Open-loop prediction from the priors -> (frames [N, horizon, ...] in [0, 1], reads [N, horizon])."""
        c = self.config
        context = context[:, -c["init_size"]:] if c["init_size"] > 0 else context[:, -1:]  # training's warm-up
        N, Tc = context.shape[:2]
        enc = self.encoder((context * 2 - 1).flatten(0, 1)).view(N, Tc, -1)
        abs_belief = enc.new_zeros(N, c["feat_size"])
        for t in range(Tc):
            abs_belief = self.abs_post_fwd(enc[:, t], abs_belief)
        abs_state = obs_state = enc.new_zeros(N, c["state_size"])
        obs_belief = enc.new_zeros(N, c["feat_size"])
        seg_len, seg_num = enc.new_zeros(N), enc.new_zeros(N)
        r = enc.new_ones(N, 1)  # the first predicted frame starts a segment
        feats, reads = [], []
        for t in range(horizon):
            if t > 0:
                abs_belief = r * self.update_abs(abs_state, abs_belief) + (1 - r) * abs_belief
            prior_abs = self.prior_abs(abs_belief)
            abs_state = r * (prior_abs.mean + prior_abs.stddev * normal_noise(abs_state, generator)) + (1 - r) * abs_state
            abs_feat = self.abs_feat(torch.cat([abs_belief, abs_state], 1))
            obs_belief = r * abs_feat + (1 - r) * self.update_obs(torch.cat([obs_state, abs_feat], 1), obs_belief)
            prior_obs = self.prior_obs(obs_belief)
            obs_state = prior_obs.mean + prior_obs.stddev * normal_noise(obs_state, generator)
            obs_feat = self.obs_feat(torch.cat([obs_belief, obs_state], 1))
            feats.append(obs_feat)
            reads.append(r[:, 0])
            seg_len = torch.where(r[:, 0] > 0, torch.ones_like(seg_len), seg_len + 1)
            seg_num = seg_num + r[:, 0]
            if t + 1 < horizon:  # boundary at t + 1 from the prior, within the segment limits of its block
                block_pos = (t + 1) % c["seq_size"]
                if block_pos == 0:
                    seg_num = torch.zeros_like(seg_num)  # the count limit restarts every seq_size frames
                forced_read, forced_copy = limit_masks(seg_len, seg_num, c["seq_size"] - block_pos,
                                                       c["max_seg_len"], c["max_seg_num"])
                p_read = F.softmax(self.prior_boundary(obs_feat).float(), -1)[:, READ]  # fp32: see sample_boundaries
                r = ((uniform_noise(p_read, generator) < p_read) | forced_read) & ~forced_copy
                r = r.to(enc.dtype)[:, None]
        feats = torch.stack(feats, 1)
        frames = torch.cat([self.decoder(chunk.flatten(0, 1)).view(N, chunk.shape[1], *context.shape[2:])
                            for chunk in feats.split(50, 1)], 1)  # chunks bound the decoder's memory
        return ((frames + 1) / 2).clamp(0, 1), torch.stack(reads, 1)


def vta(preset: str = "mmnist", **overrides) -> VTA:
    config = preset_config("vta", preset, overrides, PRESETS, DEFAULTS)
    if config["seq_size"] > config["max_seg_num"] * config["max_seg_len"]:
        raise VidbenchError(f"vta: seq_size {config['seq_size']} cannot be covered by max_seg_num "
                            f"{config['max_seg_num']} segments of at most max_seg_len {config['max_seg_len']} frames")
    return VTA(config)


vta.presets = tuple(PRESETS)
