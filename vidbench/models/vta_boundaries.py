"""VTA's boundary variable: segment limits looked ahead, forced logits, the concrete density, its noise."""

from __future__ import annotations

import math

import torch

NEAR_ONE = 1 - 1e-3  # forced boundaries: the public code's near-deterministic logits
FORCED_LOGIT = math.log(NEAR_ONE / (1 - NEAR_ONE))


def uniform_noise(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """U(0, 1) noise shaped like `like`, drawn from `generator` (on its own device) when given."""
    if generator is None:
        return torch.rand_like(like)
    return torch.rand(like.shape, generator=generator, device=generator.device, dtype=like.dtype).to(like.device)


def concrete_log_density(log_alpha, log_sample, temp) -> torch.Tensor:
    """Log density of a 2-class concrete (Gumbel-softmax) sample, up to a constant that cancels in the KL."""
    x = log_alpha - temp * log_sample
    return x.sum(-1) - 2.0 * torch.logsumexp(x, -1)


def limit_masks(seg_len, seg_num, remaining, max_len: int, max_num: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(forced_read, forced_copy) [N] bool for the next frame, given the current segment's length, the number
    of segments started so far and the frames left to cover including this one.

    Looking ahead keeps both limits satisfiable: a read is allowed only while the frames left fit in the
    segments left, a copy only while the current segment can grow and the rest still fits. (The public code
    forces a read at length max_len and a copy after max_num segments; when both bind, e.g. after very short
    early segments, its length rule wins and the window gets an extra segment.)
    """
    read_ok = (seg_num < max_num) & (remaining <= (max_num - seg_num) * max_len)
    copy_ok = (seg_len < max_len) & (remaining <= (max_len - seg_len) + (max_num - seg_num) * max_len)
    return ~copy_ok, ~read_ok & copy_ok


def forced_logits(forced_read, forced_copy, logits) -> torch.Tensor:
    """Replace logits [N, 2] by near-deterministic ones where a segment limit forces the boundary."""
    read = logits.new_tensor([FORCED_LOGIT, -FORCED_LOGIT])
    logits = torch.where(forced_copy[:, None], -read, logits)
    return torch.where(forced_read[:, None], read, logits)
