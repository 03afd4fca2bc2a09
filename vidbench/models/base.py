"""The one interface every model implements (yours too), and the model registry's front door.

The contract, all of it (README "Your model"; examples/my_model.py is a copyable one that a test evaluates):

    class MyModel(VideoModel):                      # a torch.nn.Module
        def __init__(self, channels=1, **options):  # the keys of self.config, as keywords (checkpoints rebuild it)
            super().__init__({"channels": channels, **options})
        def predict(self, context, horizon, num_samples=1, generator=None):
            # context: float32 [B, Tc, C, H, W] in [0, 1], the protocol's Tc ground-truth frames (36)
            # returns: float   [B, num_samples, horizon, C, H, W] in [0, 1], the `horizon` frames after the
            #          context only (values outside [0, 1] are clipped; NaN/inf is an error naming the video).
            # Draw randomness from `generator` (seeded per batch) so scores are reproducible. It is a CPU
            # generator on every device: draw on generator.device, then move (torch.randn(shape,
            # generator=generator).to(context.device)), and a GPU evaluation scores the CPU's samples.
        def loss(self, video):                      # only for `vidbench train`
            # video: float32 [B, T, C, H, W] in [0, 1] -> {"loss": scalar to minimise, plus named logs}
        needs_training = False                      # set it when the model arrives trained (its own weights):
                                                    # evaluate uses it as is, recording a sha256 of its weights

Name it without editing vidbench: `--model my_pkg.my_module:MyModel` (a VideoModel subclass, or a factory
returning one, importable from PYTHONPATH), an entry point in the group "vidbench.models" of an installed
package (then `vidbench ls models` lists it and `--model NAME` works), or pass the object to
vidbench.evaluate.evaluate(dataset, model=obj). Frameworks other than torch: `vidbench contexts` writes the
context frames to predict from, `vidbench evaluate --predictions` scores the frames predicted.

Models are registered by family ("cwvae", "svg", ...); a family's factory takes a preset name (usually the
dataset: "mmnist", "minerl"; "tiny" for tests) plus overrides, and returns a VideoModel whose `config`
holds everything needed to rebuild it (written into every checkpoint and results file).
"""

from __future__ import annotations

import hashlib
import inspect
from contextlib import contextmanager

import torch
from torch import nn

from vidbench.errors import VidbenchError
from vidbench.registry import MODELS


def sampling_generator(seed: int) -> torch.Generator:
    """The generator predict() is given (evaluate, sample, analyze): a CPU one on every device, as the contract
    above says, so a seed gives the same samples on a GPU as on the CPU (a CUDA generator's stream differs)."""
    return torch.Generator(device="cpu").manual_seed(seed)


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

    def __init__(self, config: dict | None = None):
        super().__init__()
        self.config = dict(config or {})

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

    def weights_sha256(self) -> str:
        """sha256 over every state_dict entry (name, dtype, shape, bytes) in name order: what decides the
        numbers of a model evaluated in-process, so a cache or results row of other weights never matches."""
        digest = hashlib.sha256()
        for name, tensor in sorted(self.state_dict().items()):
            tensor = tensor.detach().cpu().contiguous()
            digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
        return digest.hexdigest()


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
    """create_model("cwvae", preset="mmnist"); create_model("cwvae", preset="tiny", channels=3);
    create_model("my_pkg.models:MyModel") (a class is called with the overrides as keywords)."""
    factory = MODELS.get(name)
    if isinstance(factory, type) and preset is not None and "preset" not in inspect.signature(factory).parameters:
        raise VidbenchError(f"model {name}: {factory.__name__} takes no preset (got --preset {preset})")
    model = factory(preset, **overrides) if preset is not None else factory(**overrides)
    if not isinstance(model, VideoModel):
        raise VidbenchError(f"model {name}: {getattr(factory, '__name__', factory)} gave a {type(model).__name__}, "
                            f"not a vidbench.models.base.VideoModel (its docstring states the contract)")
    model.config.setdefault("name", name)
    return model


def model_from_config(config: dict) -> VideoModel:
    """Rebuild a model from the resolved config stored in a checkpoint."""
    config = dict(config)
    name, preset = config.pop("name"), config.pop("preset", None)
    return create_model(name, preset, **config)


def list_models() -> list[str]:
    return MODELS.names()
