"""One training step, exactly as `vidbench train` runs it: the function the loop calls and benchmarks time.

    from vidbench.train import step_function
    step = step_function(model, amp="bf16")     # the options are `vidbench train`'s flags
    logs = step(video)                          # float [B,T,C,H,W] in [0,1] -> {"loss": ..., "grad_norm": ...}
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

from vidbench.errors import VidbenchError
from vidbench.models.base import VideoModel
from vidbench.train.config import DEFAULT_LR, make_optimizer, optimizer_config
from vidbench.train.optim import clip_global_norm_

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class LossModule(torch.nn.Module):
    """DDP synchronises gradients of what runs inside forward(); VideoModel's entry point is loss()."""

    def __init__(self, model: VideoModel):
        super().__init__()
        self.model = model

    def forward(self, video):
        return self.model.loss(video)



class TrainStep:
    """step(video) -> logs: forward under autocast, backward, global-norm clip, optimiser step. Holds the
    optimiser and the fp16 grad scaler, whose states go into checkpoints."""

    def __init__(self, model: VideoModel, *, amp: str = "none", lr: float | None = None, forward=None,
                 device_type: str | None = None):
        if amp not in AMP_DTYPES:
            raise VidbenchError(f"--amp {amp!r}: choose one of {', '.join(AMP_DTYPES)}")
        self.model = model
        self.forward = forward or model.loss
        self.train_cfg = {"lr": float(lr if lr is not None else model.config.get("lr", DEFAULT_LR)),
                          **optimizer_config(model.config)}
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = None if model.gradient_free else make_optimizer(self.parameters, self.train_cfg)
        device_type = device_type or next(iter(model.parameters()), torch.empty(0)).device.type
        self.scaler = torch.amp.GradScaler(device_type) if amp == "fp16" else None
        self.autocast = torch.autocast(device_type, dtype=AMP_DTYPES[amp]) if AMP_DTYPES[amp] else nullcontext()

    def __call__(self, video) -> dict[str, torch.Tensor]:
        model, optimizer, scaler = self.model, self.optimizer, self.scaler
        if model.gradient_free:  # learns inside loss() (e.g. random-frame keeps training frames): no backward
            with torch.no_grad():
                out = model.loss(video)
            return {k: v.detach().float() for k, v in out.items()}
        with self.autocast:
            out = self.forward(video)
        loss = out["loss"]
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        grad_norm = clip_global_norm_(self.parameters, self.train_cfg["grad_clip"])
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        return {**{k: v.detach().float() for k, v in out.items()}, "grad_norm": grad_norm.detach().float()}


def step_function(model: VideoModel, **options) -> TrainStep:
    """The training step `vidbench train` runs with these options (its flags: amp, lr)."""
    return TrainStep(model, **options)
