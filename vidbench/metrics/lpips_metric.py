"""LPIPS (v0.1 linear heads, AlexNet backbone) as a batched per-frame metric, with the backbone loaded from a local file.

Public API:
    LPIPS(weights_dir=None, device="cpu", batch_size=256)   -> callable
    LPIPS(...)(pred, target): float [..., C, H, W] in [0, 1] (C = 1 or 3) -> float64 [...] (lower is better)
    LPIPS.weights: {"file", "git_blob_sha1"} of the AlexNet weights used (for the results file)

Conventions (REFERENCE.md section 2): the lpips package's network with its shipped v0.1 linear heads; inputs mapped
to [-1, 1] (passing [0, 1] silently underestimates); grayscale repeated to 3 channels. lpips.LPIPS(pretrained=True)
would fetch the AlexNet ImageNet weights through torchvision's downloader; instead the network is built with a random
backbone (pnet_rand=True) and the backbone is then loaded from alexnet-owt-7be5be79.pth found by
vidbench.metrics.weights.locate, so it is either the real network or a clear error, never silently random.
`_random_backbone_for_tests=True` keeps the random backbone: only tests use it, to compare against the lpips package.
"""

from __future__ import annotations

import warnings

import torch

from vidbench.errors import VidbenchError
from vidbench.metrics import weights as weight_files

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"


def _build_lpips_network():
    import lpips

    with warnings.catch_warnings():  # torchvision's "pretrained is deprecated" for the random backbone
        warnings.simplefilter("ignore")
        return lpips.LPIPS(pretrained=True, net="alex", version="0.1", pnet_rand=True, verbose=False)


def load_alexnet_backbone(network, path) -> None:
    """Copy torchvision AlexNet `features.*` weights into lpips' sliced backbone (slices keep the feature indices)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    target = network.net.state_dict()  # keys like "slice2.3.weight" hold torchvision's "features.3.weight"
    mapped = {key: state.get("features." + key.split(".", 1)[1]) for key in target}
    missing = [k for k, v in mapped.items() if v is None]
    if missing:
        raise VidbenchError(f"{path}: not a torchvision AlexNet state dict (no features.* for {missing[:2]})")
    network.net.load_state_dict(mapped, strict=True)


class LPIPS:
    def __init__(self, weights_dir=None, device="cpu", batch_size: int = 256, _random_backbone_for_tests=False):
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.network = _build_lpips_network()
        if _random_backbone_for_tests:
            self.weights = {"file": "random backbone (tests only)", "git_blob_sha1": None}
        else:
            path = weight_files.locate(ALEXNET_FILE, weights_dir=weights_dir)
            load_alexnet_backbone(self.network, path)
            self.weights = weight_files.describe(path)
        self.network.eval().requires_grad_(False).to(self.device)

    @torch.no_grad()
    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if pred.shape != target.shape:
            raise VidbenchError(f"prediction shape {tuple(pred.shape)} differs from target shape {tuple(target.shape)}")
        if pred.dim() < 3 or pred.shape[-3] not in (1, 3):
            raise VidbenchError(f"LPIPS takes frames [..., C, H, W] with C = 1 or 3; got shape {tuple(pred.shape)}")
        lead = tuple(pred.shape[:-3])
        c, h, w = pred.shape[-3:]
        pred, target = pred.reshape(-1, c, h, w), target.reshape(-1, c, h, w)
        out = []
        for start in range(0, pred.shape[0], self.batch_size):
            a = self._prepare(pred[start : start + self.batch_size])
            b = self._prepare(target[start : start + self.batch_size])
            out.append(self.network(a, b).reshape(-1).double().cpu())
        return torch.cat(out).reshape(lead)

    def _prepare(self, frames: torch.Tensor) -> torch.Tensor:
        frames = frames.to(self.device, torch.float32)
        if frames.shape[1] == 1:
            frames = frames.expand(-1, 3, -1, -1)
        return frames * 2 - 1
