"""The one interface every model implements, and the model registry's front door.

    loss(video float[B,T,C,H,W] in [0,1]) -> {"loss": scalar to minimise, plus named logs (nll, kl_l0 ...)}
    predict(context float[B,Tc,C,H,W], horizon, num_samples=1, generator=None)
        -> float[B, num_samples, horizon, C, H, W] in [0,1]

Models are registered by family ("cwvae", "svg", ...); a family's factory takes a preset name (usually the
dataset: "mmnist", "minerl"; "tiny" for tests) plus overrides, and returns a VideoModel whose `config`
holds everything needed to rebuild it (written into every checkpoint and results file).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from vidbench.errors import VidbenchError
from vidbench.registry import MODELS


class VideoModel(nn.Module):
    # Context length must be a multiple of this (CW-VAE: k^(L-1), so every level sees whole blocks).
    context_multiple: int = 1
    # Gradient-free models (random-frame) learn from data inside loss() in training mode; the training
    # loop then skips backward and the optimiser.
    gradient_free: bool = False
    # False only for predictors that use nothing but the context (copy-last): every other model is
    # evaluated from a trained run, which `vidbench evaluate --model NAME` finds under models/.
    needs_training: bool = True
    # Why --cuda-graphs cannot capture this model's training step (None: it can). Capture needs a step with
    # no host synchronisation; only the CW-VAE family's is checked against its eager step (tests/test_cuda.py).
    cuda_graphs_refusal: str | None = "its training step has not been checked for host synchronisation"

    def __init__(self, config: dict):
        super().__init__()
        self.config = dict(config)

    def loss(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def predict(self, context: torch.Tensor, horizon: int, num_samples: int = 1,
                generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def check_context(self, context: torch.Tensor) -> None:
        """Shared argument checks for predict(): shape, channels, and the context-length rule."""
        if context.ndim != 5:
            raise VidbenchError(f"{self.config.get('name', 'model')}: context must be [B,T,C,H,W], got {tuple(context.shape)}")
        channels = self.config.get("channels")
        if channels is not None and context.shape[2] != channels:
            raise VidbenchError(f"{self.config.get('name')}: model takes {channels} channels, context has {context.shape[2]}")
        if context.shape[1] % self.context_multiple:
            raise VidbenchError(
                f"{self.config.get('name')}: context of {context.shape[1]} frames is not a multiple of "
                f"{self.context_multiple} (k^(levels-1)); every level must see whole blocks, e.g. 36 for k=6, 3 levels"
            )

    @contextmanager
    def evaluating(self):
        """Eval mode for the block (BatchNorm running statistics, no dropout), then the previous mode back."""
        was_training = self.training
        self.eval()
        try:
            yield self
        finally:
            self.train(was_training)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def preset_config(family: str, preset: str, overrides: dict, presets: dict, defaults: dict) -> dict:
    """A family's resolved config: defaults, then the preset, then the user's overrides (checked by name)."""
    if preset not in presets:
        raise VidbenchError(f"{family}: unknown preset {preset!r}; presets: {', '.join(presets)}")
    unknown = set(overrides) - set(defaults) - {"channels", "name"}
    if unknown:
        raise VidbenchError(f"{family}: unknown option(s) {', '.join(sorted(unknown))}; options: "
                            f"{', '.join(['channels', *defaults])}")
    return {"preset": preset, **defaults, **presets[preset], **overrides}


def create_model(name: str, preset: str | None = None, **overrides) -> VideoModel:
    """create_model("cwvae", preset="mmnist"); create_model("cwvae", preset="tiny", channels=3)."""
    factory = MODELS.get(name)
    model = factory(preset, **overrides) if preset is not None else factory(**overrides)
    model.config.setdefault("name", name)
    return model


def model_from_config(config: dict) -> VideoModel:
    """Rebuild a model from the resolved config stored in a checkpoint."""
    config = dict(config)
    name, preset = config.pop("name"), config.pop("preset", None)
    return create_model(name, preset, **config)


def list_models() -> list[str]:
    return MODELS.names()
