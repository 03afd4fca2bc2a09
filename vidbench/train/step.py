"""One training step, exactly as `vidbench train` runs it: the function the loop calls and benchmarks time.

    from vidbench.train import step_function
    step = step_function(model, amp="bf16")     # the options are `vidbench train`'s flags
    logs = step(video)                          # float [B,T,C,H,W] in [0,1] -> {"loss": ..., "grad_norm": ...}

Options (each a `vidbench train` flag; tests/test_train_modes.py checks each against the default path):
    amp="none"|"bf16"|"fp16"   autocast; changes results beyond float rounding, so a run never resumes under
                               another --amp (it is part of the run's identity in config.json). CW-VAE's
                               recurrence stays fp32 (its cells' small matmuls gain nothing from bf16 and
                               its rounding would compound over the steps): convolutions and the level
                               MLPs run in bf16. On a CPU with AVX512-BF16 (the 2-core EPYC) the mmnist
                               step is 0.47 s in bf16 against 0.735 s in fp32 (../shared/perf medians)
    compile=False              torch.compile of the loss (forward and backward); inductor's random ops fall
                               back to eager's, so the same seed draws the same noise as without --compile
    channels_last=None         4-D weights (convolutions) in channels-last memory format: oneDNN and cuDNN
                               then run every convolution channels-last, activations and gradients included.
                               None (the default) means on for CPU training, and on CUDA under --amp bf16 or
                               fp16 (tensor-core convolutions are channels-last natively): oneDNN's
                               channels-last convolutions make a CPU step 1.27x faster (CW-VAE and VTA at
                               the mmnist preset, batch 4 x 100 / 4 x 40, 2 threads; SVG 1.02x); on an H100,
                               bf16 + CUDA graphs went from 19.2 to 21.0 steps/s (mmnist, batch 50 x 100). fp32
                               on CUDA stays in the default layout (not measured channels-last)
    cuda_graphs=False          CUDA only: the whole step captured once as a CUDA graph and replayed
                               (vidbench/train/graphed.py); the GPU step is launch-bound. With compile,
                               the compiled step is what gets captured. Not with fp16 (its grad scaler
                               synchronises with the host)
    lr=None                    the preset's learning rate unless given
On CUDA the step also turns on cuDNN's autotuning (torch.backends.cudnn.benchmark: the fastest algorithm
per convolution shape, timed once; a training run's shapes are fixed) unless torch.backends.cudnn.
deterministic asks for reproducible kernels: 21.0 -> 22.6 steps/s on an H100 (bf16 + graphs, channels-last).
compile, channels_last and cuda_graphs give the default path's results within float rounding (tested), so
they are recorded in config.json but a run may resume with them changed (e.g. compiled on a GPU after a CPU
start).
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

from vidbench.cpu_memory import keep_freed_memory
from vidbench.errors import VidbenchError
from vidbench.models.base import VideoModel
from vidbench.train.config import DEFAULT_LR, make_optimizer, optimizer_config
from vidbench.train.graphed import GraphedStep
from vidbench.train.optim import clip_global_norm_

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def default_channels_last(device_type: str, amp: str = "none") -> bool:
    """channels_last=None resolves to this: on for CPU (oneDNN) and for CUDA under autocast (see above)."""
    return device_type == "cpu" or (device_type == "cuda" and amp in ("bf16", "fp16"))


def autotune_convolutions(device_type: str) -> bool:
    """cuDNN picks each convolution's fastest algorithm by timing it once per shape (CUDA training; see the
    module docstring); a user who set cudnn.deterministic keeps the deterministic choice. Returns the flag."""
    if device_type == "cuda" and not torch.backends.cudnn.deterministic:
        torch.backends.cudnn.benchmark = True
    return torch.backends.cudnn.benchmark


class LossModule(torch.nn.Module):
    """DDP synchronises gradients of what runs inside forward(); VideoModel's entry point is loss()."""

    def __init__(self, model: VideoModel):
        super().__init__()
        self.model = model

    def forward(self, video):
        return self.model.loss(video)


def check_amp(amp: str) -> None:
    if amp not in AMP_DTYPES:
        raise VidbenchError(f"--amp {amp!r}: choose one of {', '.join(AMP_DTYPES)}")


def compile_loss(forward):
    """torch.compile of a loss callable. fallback_random: inductor would otherwise generate its own random
    numbers (a different stream from eager's for the same seed); with it, --compile changes rounding only.
    dynamic=False: a new input shape compiles anew. Dynamo's default turns a size that changed into a symbol,
    and eager's randn (the fallback) refuses symbolic sizes, so the second shape seen in a process crashed."""
    return torch.compile(forward, dynamic=False, options={"fallback_random": True})


def check_cuda_graphs(device_type: str, amp: str, model: VideoModel) -> None:
    why = ("it needs a CUDA device" if device_type != "cuda" else
           "fp16's grad scaler synchronises with the host every step; use --amp bf16" if amp == "fp16" else
           "the model learns without gradients" if model.gradient_free else
           f"{model.config.get('name', type(model).__name__)}: {model.cuda_graphs_refusal} (captured and "
           f"checked: the CW-VAE family, cwvae/notmpabs/rssm)" if model.cuda_graphs_refusal else None)
    if why:
        raise VidbenchError(f"--cuda-graphs: {why}")


class TrainStep:
    """step(video) -> logs: forward under autocast, backward, global-norm clip, optimiser step. Holds the
    optimiser and the fp16 grad scaler, whose states go into checkpoints."""

    def __init__(self, model: VideoModel, *, amp: str = "none", lr: float | None = None, compile: bool = False,
                 channels_last: bool | None = None, cuda_graphs: bool = False, forward=None,
                 device_type: str | None = None):
        check_amp(amp)
        self.model = model
        device_type = device_type or next(iter(model.parameters()), torch.empty(0)).device.type
        if channels_last is None:
            channels_last = default_channels_last(device_type, amp)
        if device_type == "cpu":
            keep_freed_memory()  # no page faults for each step's activations (vidbench/cpu_memory.py)
        autotune_convolutions(device_type)
        if cuda_graphs:
            check_cuda_graphs(device_type, amp, model)
        self.options = {"amp": amp, "compile": bool(compile), "channels_last": bool(channels_last),
                        "cuda_graphs": bool(cuda_graphs)}
        if channels_last:
            # In place (the Parameter objects stay the same), before the optimiser's moments exist.
            model.to(memory_format=torch.channels_last)
        self.forward = forward or model.loss
        self.train_cfg = {"lr": float(lr if lr is not None else model.config.get("lr", DEFAULT_LR)),
                          **optimizer_config(model.config)}
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = None if model.gradient_free else make_optimizer(self.parameters, self.train_cfg,
                                                                          capturable=bool(cuda_graphs))
        self.scaler = torch.amp.GradScaler(device_type) if amp == "fp16" else None
        # Under capture, autocast's cache of casted weights would outlive the graph's inputs: off there.
        self.autocast = (torch.autocast(device_type, dtype=AMP_DTYPES[amp], cache_enabled=not cuda_graphs)
                         if AMP_DTYPES[amp] else nullcontext())
        self.graphed = GraphedStep(self._eager_step, model, self.optimizer) if cuda_graphs else None

    @property
    def forward(self):
        return self._forward

    @forward.setter
    def forward(self, fn):
        """The loss callable (the model's loss, or its DDP wrapper set by the loop); compiled under --compile."""
        self._forward = compile_loss(fn) if self.options["compile"] and not self.model.gradient_free else fn

    def __call__(self, video) -> dict[str, torch.Tensor]:
        if self.graphed is not None:
            return self.graphed(video)
        return self._eager_step(video)

    def _eager_step(self, video) -> dict[str, torch.Tensor]:
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
    """The training step `vidbench train` runs with these options (its flags: amp, compile, channels_last,
    cuda_graphs, lr; JSON spellings with dashes, e.g. {"channels-last": true}, are accepted too)."""
    options = {key.replace("-", "_"): value for key, value in options.items()}
    return TrainStep(model, **options)
