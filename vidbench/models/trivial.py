"""Reference predictors with nothing to learn by gradient: copy-last, context-mean (the blur predictor: the
per-pixel mean of the context frames, which SSIM and PSNR reward and the readout does not) and random-frame
(the paper's 'random').

Both are gradient_free: the training loop calls loss() and skips backward/the optimiser. copy-last ignores
the data; random-frame keeps a uniform random sample of the training frames it is shown (reservoir
sampling, Vitter's algorithm R) in a registered buffer, so a checkpoint carries it.
"""

from __future__ import annotations

import torch

from vidbench.errors import VidbenchError
from vidbench.models.base import VideoModel
from vidbench.models.layers import IMAGE_SIZE

# A preset names the dataset, which fixes the channels (REFERENCE.md section 3); "tiny" is for tests.
PRESET_CHANNELS = {"mmnist": 1, "mazes": 3, "minerl": 3, "kth": 1, "tiny": 1, "demo": 1}
PRESET_NAMES = tuple(PRESET_CHANNELS)


def _zero_loss(like: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"loss": like.new_zeros(())}


class CopyLast(VideoModel):
    gradient_free = True
    needs_training = False

    def loss(self, video):
        return _zero_loss(video)

    forward = loss

    @torch.no_grad()
    def predict(self, context, horizon, num_samples=1, generator=None):
        self.check_context(context)
        if context.shape[1] == 0:
            raise VidbenchError("copy-last: needs at least one context frame")
        last = context[:, -1].clamp(0, 1)
        return last[:, None, None].expand(-1, num_samples, horizon, *last.shape[1:]).clone()


class ContextMean(CopyLast):
    """Every predicted frame is the per-pixel mean of the context: a smear of the digits along their paths,
    the prediction that minimises squared error when nothing about the future is known."""

    @torch.no_grad()
    def predict(self, context, horizon, num_samples=1, generator=None):
        self.check_context(context)
        if context.shape[1] == 0:
            raise VidbenchError("context-mean: needs at least one context frame")
        mean = context.clamp(0, 1).mean(dim=1)
        return mean[:, None, None].expand(-1, num_samples, horizon, *mean.shape[1:]).clone()


class RandomFrame(VideoModel):
    gradient_free = True

    def __init__(self, config):
        super().__init__(config)
        size, channels = self.config["buffer_size"], self.config["channels"]
        # uint8 like the stored data (frames are uint8 / 255), 4x smaller than float.
        self.register_buffer("frames", torch.zeros(size, channels, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.uint8))
        self.register_buffer("seen", torch.zeros((), dtype=torch.int64))

    def loss(self, video):
        if self.training:
            self.observe(video.detach().flatten(0, 1))
        return _zero_loss(video)

    forward = loss

    @torch.no_grad()
    def observe(self, frames: torch.Tensor) -> None:
        """Reservoir update with frames [N,C,H,W] in [0,1]: afterwards the buffer is a uniform sample
        (without replacement) of every frame seen so far."""
        if frames.shape[1:] != self.frames.shape[1:]:
            raise VidbenchError(f"random-frame: frames of shape {tuple(frames.shape[1:])}, model built for "
                                f"{tuple(self.frames.shape[1:])} (set channels=)")
        size, seen, n = len(self.frames), int(self.seen), len(frames)
        as_bytes = (frames.clamp(0, 1) * 255).round().to(torch.uint8).to(self.frames.device)
        fill = max(0, min(n, size - seen))
        self.frames[seen : seen + fill] = as_bytes[:fill]
        if fill < n:
            # Frame number i (0-based over all frames ever seen) replaces a uniform slot j in [0, i] if j < size.
            numbers = torch.arange(seen + fill, seen + n, dtype=torch.float64)
            slots = (torch.rand(len(numbers), dtype=torch.float64) * (numbers + 1)).long()
            for frame, slot in zip(as_bytes[fill:][slots < size], slots[slots < size].tolist()):
                self.frames[slot] = frame  # in order, so a later frame wins a contested slot
        self.seen += n

    @torch.no_grad()
    def predict(self, context, horizon, num_samples=1, generator=None):
        self.check_context(context)
        available = min(int(self.seen), len(self.frames))
        if available == 0:
            raise VidbenchError("random-frame: has seen no training frames; train it first "
                                "(vidbench train --model random-frame) or load a trained checkpoint")
        b = context.shape[0]
        picks = torch.randint(available, (b * num_samples * horizon,), generator=generator,
                              device=generator.device if generator is not None else "cpu")
        frames = self.frames[picks.to(self.frames.device)].to(context.device, context.dtype) / 255
        return frames.view(b, num_samples, horizon, *frames.shape[1:])


def _config(name: str, preset: str | None, overrides: dict, defaults: dict) -> dict:
    if preset is not None and preset not in PRESET_CHANNELS:
        raise VidbenchError(f"{name}: unknown preset {preset!r}; choose from {', '.join(PRESET_NAMES)}")
    config = dict(defaults)
    if preset is not None:
        config["channels"] = PRESET_CHANNELS[preset]
    overrides = {k: v for k, v in overrides.items() if k != "name"}
    unknown = sorted(set(overrides) - set(config))
    if unknown:
        raise VidbenchError(f"{name}: unknown model option(s) {', '.join(unknown)}; known: {', '.join(sorted(config))}")
    config.update({k: (None if v is None else int(v)) for k, v in overrides.items()})
    return {"name": name, "preset": preset, **config}


def copy_last(preset: str | None = None, **overrides) -> CopyLast:
    """channels=None accepts any number of channels."""
    return CopyLast(_config("copy-last", preset, overrides, {"channels": None}))


def context_mean(preset: str | None = None, **overrides) -> ContextMean:
    """channels=None accepts any number of channels."""
    return ContextMean(_config("context-mean", preset, overrides, {"channels": None}))


def random_frame(preset: str | None = None, **overrides) -> RandomFrame:
    """buffer_size frames are kept (1000 by default: 12 MB for RGB)."""
    return RandomFrame(_config("random-frame", preset, overrides, {"channels": 1, "buffer_size": 1000}))


copy_last.presets = PRESET_NAMES
context_mean.presets = PRESET_NAMES
random_frame.presets = PRESET_NAMES
