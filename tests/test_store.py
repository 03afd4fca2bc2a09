import json

import numpy as np
import pytest

from vidbench.data import store
from vidbench.data.loader import TestSequences, TrainWindows, to_model_input, to_uint8_frames
from vidbench.data.store import DatasetWriter, PreparedSplit, verify
from vidbench.errors import VidbenchError


def _video(i, length=12):
    rng = np.random.default_rng(i)
    return rng.integers(0, 256, size=(length, 8, 8, 1), dtype=np.uint8)


def _write(out, n_train=5, n_test=3, fail_after=None, overwrite=False):
    with DatasetWriter(out, dataset="toy", source={"kind": "test"}, params={"n": n_train}, overwrite=overwrite) as writer:
        for split, n in (("train", n_train), ("test", n_test)):
            s = writer.split(split)
            for i in range(s.resume_from, n):
                if fail_after is not None and split == "train" and i == fail_after:
                    raise KeyboardInterrupt
                s.add(_video(i), {"i": i})
        return writer.commit()


@pytest.fixture(autouse=True)
def tiny_shards(monkeypatch):
    monkeypatch.setattr(store, "SHARD_BYTES", 2 * _video(0).nbytes)  # two sequences per shard


def test_round_trip(tmp_path):
    manifest = _write(tmp_path / "toy")
    assert manifest["splits"]["train"]["num_sequences"] == 5
    assert len(manifest["splits"]["train"]["shards"]) == 3
    split = PreparedSplit(tmp_path / "toy", "train")
    assert len(split) == 5
    for i in range(5):
        np.testing.assert_array_equal(split.sequence(i), _video(i))
        assert split.metadata(i) == {"i": i}
    assert verify(tmp_path / "toy") == []
    saved = json.loads((tmp_path / "toy" / "manifest.json").read_text())
    assert saved["splits"]["test"]["shards"][0]["sha256"] and saved["vidbench_version"]


def test_interrupted_write_looks_unfinished_and_resumes(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _write(tmp_path / "toy", fail_after=3)
    assert not (tmp_path / "toy").exists()
    with pytest.raises(VidbenchError, match="interrupted prepare"):
        PreparedSplit(tmp_path / "toy", "train")
    # Two complete shards (4 sequences)? Only the first shard (2 sequences) was flushed before the interruption.
    partial = tmp_path / ".toy.partial" / "train"
    assert sorted(p.name for p in partial.iterdir()) == ["shard-00000.meta.json", "shard-00000.npy"]
    (partial / "shard-00001.npy").write_bytes(b"half-written")  # a crash mid-shard leaves junk: must be dropped
    _write(tmp_path / "toy")
    split = PreparedSplit(tmp_path / "toy", "train")
    assert [split.metadata(i)["i"] for i in range(len(split))] == [0, 1, 2, 3, 4]
    assert verify(tmp_path / "toy") == []
    assert not (tmp_path / ".toy.partial").exists()


def test_same_input_gives_byte_identical_data(tmp_path):
    a, b = _write(tmp_path / "a"), _write(tmp_path / "b")
    assert a["splits"]["test"]["data_sha256"] == b["splits"]["test"]["data_sha256"]
    assert [s["sha256"] for s in a["splits"]["test"]["shards"]] == [s["sha256"] for s in b["splits"]["test"]["shards"]]


def test_verify_detects_corruption(tmp_path):
    _write(tmp_path / "toy")
    shard = tmp_path / "toy" / "train" / "shard-00001.npy"
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))
    (tmp_path / "toy" / "test" / "shard-00000.npy").unlink()
    problems = verify(tmp_path / "toy")
    assert len(problems) == 2
    assert any("train/shard-00001.npy: sha256 does not match" in p for p in problems)
    assert any("test/shard-00000.npy: missing" in p for p in problems)


def test_existing_dataset_is_kept_unless_overwrite(tmp_path):
    _write(tmp_path / "toy")
    before = (tmp_path / "toy" / "manifest.json").read_bytes()
    with pytest.raises(VidbenchError, match="already there"):
        _write(tmp_path / "toy")
    with pytest.raises(KeyboardInterrupt):
        _write(tmp_path / "toy", n_train=4, fail_after=2, overwrite=True)
    assert (tmp_path / "toy" / "manifest.json").read_bytes() == before  # a failed rebuild leaves the old data
    _write(tmp_path / "toy", n_train=4, overwrite=True)
    assert PreparedSplit(tmp_path / "toy", "train").info["num_sequences"] == 4


def test_overwrite_replaces_only_the_store_files_and_leaves_nothing_aside(tmp_path):
    (tmp_path / "toy").mkdir()  # an empty --out folder is fine
    _write(tmp_path / "toy", n_train=5)
    _write(tmp_path / "toy", n_train=3, overwrite=True)  # 3 shards -> 2: the old third shard must go
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy"]  # no .old, .partial or lock left
    assert store.store_files(tmp_path / "toy") is not None and verify(tmp_path / "toy") == []
    assert not (tmp_path / "toy" / "train" / "shard-00002.npy").exists()
    (tmp_path / "toy" / "train" / "notes.txt").write_text("mine")  # no longer only a store's files
    with pytest.raises(VidbenchError, match="is not a vidbench prepared dataset"):
        _write(tmp_path / "toy", overwrite=True)
    assert (tmp_path / "toy" / "train" / "notes.txt").read_text() == "mine"


def test_an_old_store_half_removed_by_a_kill_is_removed_by_the_next_run(tmp_path):
    _write(tmp_path / "old")
    (tmp_path / "old").rename(tmp_path / ".toy.old")  # as a commit killed before it removed the old store
    (tmp_path / ".toy.old" / "train" / "shard-00000.npy").unlink()  # ... while removing it
    _write(tmp_path / "toy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy"]


def test_variable_lengths_and_loaders(tmp_path):
    writer = DatasetWriter(tmp_path / "v", dataset="toy", source={}, params={})
    s = writer.split("train")
    for i, length in enumerate([12, 12, 20, 7]):
        s.add(_video(i, length), {"i": i})
    manifest = writer.commit()
    info = manifest["splits"]["train"]
    assert (info["length"], info["min_length"], info["max_length"]) == (None, 7, 20)
    split = PreparedSplit(tmp_path / "v", "train")
    windows = TrainWindows(split, length=10, seed=1)
    # The authors' windows: non-overlapping from frame 0, the partial rest dropped; the 7-frame video gives none.
    assert (windows.indices, windows.starts) == ([0, 1, 2, 2], [0, 0, 0, 10])
    assert len(TrainWindows(split, length=6)) == 2 + 2 + 3 + 1
    first = windows[3]
    assert first.shape == (10, 8, 8, 1)
    np.testing.assert_array_equal(first.numpy(), split.sequence(2)[10:20])
    windows.set_epoch(5)
    assert torch_equal(first, windows[3])  # the same windows every epoch
    with pytest.raises(VidbenchError, match="shorter than 12 frames"):
        TestSequences(split, num_videos=4, length=12)
    batch = to_model_input(TestSequences(split, num_videos=2, length=12)[0][None])
    assert batch.shape == (1, 12, 1, 8, 8) and 0 <= batch.min() and batch.max() <= 1
    np.testing.assert_array_equal(to_uint8_frames(batch)[0].numpy(), _video(0))


def torch_equal(a, b):
    return bool((a == b).all())


def test_split_survives_pickling_to_workers(tmp_path):
    import pickle

    _write(tmp_path / "toy")
    split = PreparedSplit(tmp_path / "toy", "train")
    split.sequence(0)
    clone = pickle.loads(pickle.dumps(split))
    assert clone._arrays == {}
    np.testing.assert_array_equal(clone.sequence(4), _video(4))
