"""--cuda-graphs: the whole training step (forward, backward, clip, optimiser) captured once as a CUDA graph
and replayed on every batch.

Why: on a GPU the CW-VAE step is launch-bound. Its 100-step x 3-level recurrence is thousands of small
kernels, so an H200 runs batch 50 in eager fp32 at 5.7 steps/s and a 4x larger batch costs only 2.2x the
time (tests/benchmarks/gpu_check.py). A replayed graph launches them all in one call, without
torch.compile's minutes of warm-up.

What capture needs, and how it is met:
- no host synchronisation inside the step: the models' losses, the global-norm clip and the optimisers
  (TFAdam and torch's Adam in their `capturable` form: step counts and step sizes on the device) compute
  on tensors only;
- lazily created state (optimiser moments, cuBLAS handles, autocast's weight casts) must exist before
  capture: a few warm-up steps run on a side stream first, and then the parameters, buffers, optimiser
  state and RNG states are put back exactly as they were, so the warm-up leaves no trace in training;
- fixed shapes and addresses: the batch is copied into one static input tensor, and a batch of another
  shape is refused (the training loader drops the last partial batch, so this never happens there);
- autocast must not cache weight casts across the capture (cache_enabled=False).
Random noise drawn inside the step (torch.randn on the CUDA generator) is graph-safe: each replay advances
the generator's offset as the eager step would. tests/test_cuda.py checks loss and parameters after
several replayed steps against the eager step.
"""

from __future__ import annotations

import torch

from vidbench.errors import VidbenchError

WARMUP_STEPS = 3  # PyTorch's guidance for whole-network capture: a few eager iterations on a side stream


class GraphedStep:
    """Replays one captured training step. eager_step(video) -> logs is the step to capture."""

    def __init__(self, eager_step, model: torch.nn.Module, optimizer: torch.optim.Optimizer):
        self.eager_step, self.model, self.optimizer = eager_step, model, optimizer
        self.graph = None
        self.static_video = None
        self.static_logs: dict[str, torch.Tensor] = {}

    def __call__(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.graph is None:
            self._capture(video)
        elif video.shape != self.static_video.shape or video.dtype != self.static_video.dtype:
            raise VidbenchError(f"--cuda-graphs: the step was captured for batches of shape "
                                f"{tuple(self.static_video.shape)} ({self.static_video.dtype}); got "
                                f"{tuple(video.shape)} ({video.dtype}). Keep the batch shape fixed, or drop the flag")
        self.static_video.copy_(video, non_blocking=True)
        self.graph.replay()
        return {key: value.clone() for key, value in self.static_logs.items()}

    def _capture(self, video: torch.Tensor) -> None:
        if video.device.type != "cuda":
            raise VidbenchError(f"--cuda-graphs needs the batch on a CUDA device; got {video.device}")
        self.static_video = video.detach().clone()
        saved = _snapshot(self.model, self.optimizer)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                self.eager_step(self.static_video)
        torch.cuda.current_stream().wait_stream(side)
        _restore(self.model, self.optimizer, saved)
        self.graph = torch.cuda.CUDAGraph()
        self.optimizer.zero_grad(set_to_none=True)  # backward inside the capture allocates the static grads
        with torch.cuda.graph(self.graph):
            self.static_logs = self.eager_step(self.static_video)


def _snapshot(model, optimizer) -> dict:
    """Copies of everything a training step changes: parameters, buffers, optimiser state, RNG states."""
    return {
        "tensors": [t.detach().clone() for t in (*model.parameters(), *model.buffers())],
        "optimizer": {id(p): {k: v.clone() if torch.is_tensor(v) else v for k, v in state.items()}
                      for p, state in optimizer.state.items()},
        "cpu_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all(),
    }


@torch.no_grad()
def _restore(model, optimizer, saved: dict) -> None:
    """Undo the warm-up in place (the graph will read these very tensors). Optimiser state the warm-up
    created is zeroed: a fresh Adam state is all zeros (step 0, both moments 0)."""
    for tensor, copy in zip((*model.parameters(), *model.buffers()), saved["tensors"]):
        tensor.copy_(copy)
    for p, state in optimizer.state.items():
        before = saved["optimizer"].get(id(p))
        for key, value in state.items():
            if not torch.is_tensor(value):
                continue
            if before is None:
                value.zero_()
            else:
                value.copy_(before[key])
    torch.set_rng_state(saved["cpu_rng"])
    torch.cuda.set_rng_state_all(saved["cuda_rng"])
