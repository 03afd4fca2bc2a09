"""Your own model on vidbench, without editing vidbench: copy this file and change the network.

    PYTHONPATH=examples vidbench train --model my_model:MyModel --dataset mmnist --steps 2000
    PYTHONPATH=examples vidbench evaluate --model my_model:MyModel --dataset mmnist --protocol mmnist-short@1
    vidbench leaderboard

or from Python: `evaluate("datasets/mmnist", model=MyModel(), protocol="mmnist-short@1")` (a model object is
evaluated as it is; its results file records a sha256 of its weights). The whole contract is in the
docstring of vidbench/models/base.py; tests/test_your_model.py runs this file.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from vidbench.models.base import VideoModel


class MyModel(VideoModel):
    """Next frame = a small conv net of the last two frames, rolled out open-loop (deterministic)."""

    def __init__(self, channels: int = 1, hidden: int = 16):
        # Every constructor argument goes into the config: a checkpoint rebuilds the model as MyModel(**config).
        super().__init__({"channels": channels, "hidden": hidden})
        self.net = nn.Sequential(nn.Conv2d(2 * channels, hidden, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(hidden, channels, 3, padding=1))

    def step(self, previous: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """[B,C,H,W] x 2 -> the next frame, [B,C,H,W] in [0, 1]: the last frame plus a learned change."""
        return (last + self.net(torch.cat([previous, last], 1))).clamp(0, 1)

    def loss(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        """video float [B,T,C,H,W] in [0,1] -> {"loss": ...}: one-step prediction error (vidbench train only)."""
        b, t = video.shape[:2]
        previous, last, target = (video[:, i : t - 2 + i].flatten(0, 1) for i in range(3))
        mse = F.mse_loss(self.step(previous, last), target)
        return {"loss": mse, "mse": mse.detach()}

    def predict(self, context: torch.Tensor, horizon: int, num_samples: int = 1,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """context float [B,Tc,C,H,W] in [0,1] -> float [B, num_samples, horizon, C, H, W] in [0,1]."""
        self.check_context(context)
        previous, last = context[:, -2], context[:, -1]
        frames = []
        for _ in range(horizon):
            previous, last = last, self.step(previous, last)
            frames.append(last)
        # Deterministic: every sample is the same rollout (a stochastic model draws from `generator`).
        return torch.stack(frames, 1)[:, None].expand(-1, num_samples, -1, -1, -1, -1)
