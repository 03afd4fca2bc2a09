"""MineRL Navigate builder: the authors' zip layout and a fake MINERL_DATA_ROOT in minerl's real file formats."""

import hashlib
import json
import zipfile

import numpy as np
import pytest

from vidbench.data import minerl
from vidbench.data.store import PreparedSplit, verify
from vidbench.data.video import write_video
from vidbench.errors import VidbenchError


def coded_video(first: int, count: int) -> np.ndarray:
    """Frame t carries t (mod 256) in two flat halves: top = 8 + 16 * (t // 16 % 16), bottom = 8 + 16 * (t % 16)."""
    t = np.arange(first, first + count)
    video = np.empty((count, 64, 64, 3), dtype=np.uint8)
    video[:, :32] = (8 + 16 * (t // 16 % 16))[:, None, None, None]
    video[:, 32:] = (8 + 16 * (t % 16))[:, None, None, None]
    return video


def frame_code(frame: np.ndarray) -> int:
    top, bottom = (int(np.rint((frame[rows].mean() - 8) / 16)) for rows in (slice(4, 28), slice(36, 60)))
    return top * 16 + bottom


def write_stream(folder, frames: int, steps: int, metadata=True):
    """A stream folder as the minerl downloader writes it: recording.mp4, rendered.npz, metadata.json."""
    folder.mkdir(parents=True)
    write_video(folder / "recording.mp4", coded_video(0, frames), fps=20)
    np.savez(folder / "rendered.npz", reward=np.zeros(steps, np.float32), action_forward=np.ones(steps, np.int64))
    if metadata:
        (folder / "metadata.json").write_text(json.dumps({"success": True, "duration_ms": 1000, "true_video_frame_count": frames}))


def pick_streams():
    """Stream names (minerl style) that the hash rule puts in test and in train."""
    names = [f"v3_stream_{i}-{i * 7}" for i in range(40)]
    test = [n for n in names if minerl.is_test_stream(n)]
    train = [n for n in names if not minerl.is_test_stream(n)]
    return test[0], train[0], train[1]


def test_split_rule_is_a_fixed_hash():
    for name in ("v3_absolute_grape_changeling-7_14600-16799", "a", "b", "c"):
        expected = int(hashlib.sha256(name.encode()).hexdigest()[:16], 16) / 2**64 < 0.2
        assert minerl.is_test_stream(name) == expected
    names = [f"s{i}" for i in range(2000)]
    share = np.mean([minerl.is_test_stream(n) for n in names])
    assert 0.17 < share < 0.23  # a fixed hash: 0.1945 for these names; binomial sd 0.009, so +-3.4 sd of 0.2


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("minerl")
    test_stream, train_a, train_b = pick_streams()
    # train_a: 1070 frames, 1049 steps -> keep the last 1050 frames (from frame 20) -> 2 pieces.
    write_stream(root / "MineRLNavigate-v0" / train_a, 1070, 1049)
    # The same recording under the Dense variant: must be read once.
    write_stream(root / "MineRLNavigateDense-v0" / train_a, 1070, 1049)
    write_stream(root / "MineRLNavigateExtreme-v0" / train_b, 510, 509, metadata=False)  # 1 piece from frame 0
    write_stream(root / "MineRLNavigate-v0" / test_stream, 530, 520)  # 521 kept from frame 9 -> 1 piece
    write_stream(root / "MineRLTreechop-v0" / "v3_not_navigate", 510, 509)  # another task: ignored
    return root, test_stream, train_a, train_b


def test_raw_dedup_alignment_split(data_root, tmp_path, monkeypatch):
    root, test_stream, train_a, train_b = data_root
    monkeypatch.setenv("MINERL_DATA_ROOT", str(root))
    manifest = minerl.prepare(tmp_path / "minerl", source="raw")
    assert verify(tmp_path / "minerl") == []
    assert manifest["splits"]["train"]["num_sequences"] == 3  # train_a twice (not four times), train_b once
    assert manifest["splits"]["test"]["num_sequences"] == 1
    assert manifest["duplicate_streams"] == 1 and manifest["streams"] == {"train": 2, "test": 1}
    train = PreparedSplit(tmp_path / "minerl", "train")
    metas = [train.metadata(i) for i in range(3)]
    by_item = {m["item"]: i for i, m in enumerate(metas)}
    assert set(by_item) == {f"{train_a}#0", f"{train_a}#1", f"{train_b}#0"}
    assert metas[by_item[f"{train_a}#0"]]["envs"] == ["MineRLNavigate-v0", "MineRLNavigateDense-v0"]
    # Alignment: the last len(reward)+1 frames, cut into 500-frame pieces.
    first = train.sequence(by_item[f"{train_a}#0"])
    second = train.sequence(by_item[f"{train_a}#1"])
    assert first.shape == (500, 64, 64, 3)
    assert [frame_code(first[t]) for t in (0, 1, 499)] == [20, 21, 519 % 256]
    assert frame_code(second[0]) == 520 % 256 and frame_code(second[499]) == 1019 % 256
    assert metas[by_item[f"{train_a}#1"]]["recording_frame"] == 520
    assert frame_code(train.sequence(by_item[f"{train_b}#0"])[0]) == 0
    test = PreparedSplit(tmp_path / "minerl", "test")
    assert test.metadata(0)["stream"] == test_stream and frame_code(test.sequence(0)[0]) == 9
    assert test.metadata(0)["success"] is True
    # No stream in both splits.
    assert {m["stream"] for m in metas}.isdisjoint({test.metadata(0)["stream"]})


def test_raw_bad_streams(data_root, tmp_path):
    root, test_stream, train_a, train_b = data_root
    bad_root = tmp_path / "root"
    write_stream(bad_root / "MineRLNavigate-v0" / test_stream, 530, 520)
    write_stream(bad_root / "MineRLNavigate-v0" / train_a, 600, 599)  # needs 600 frames: ok, 1 piece
    write_stream(bad_root / "MineRLNavigate-v0" / train_b, 400, 509)  # video shorter than the steps
    missing = bad_root / "MineRLNavigateExtreme-v0" / "v3_missing_video"
    write_stream(missing, 510, 509)
    (missing / "recording.mp4").unlink()
    expected_first = min([train_b, "v3_missing_video"])
    with pytest.raises(VidbenchError, match=expected_first):
        minerl.prepare(tmp_path / "out", source="raw", path=bad_root)
    assert not (tmp_path / "out" / "manifest.json").exists()
    manifest = minerl.prepare(tmp_path / "out", source="raw", path=bad_root, skip_bad=True)
    errors = {s["file"].split("/")[-1]: s["error"] for s in manifest["skipped"]}
    assert "400 frames decoded, rendered.npz has 509 steps" in errors[train_b]
    assert "recording.mp4: missing" in errors["v3_missing_video"]
    assert manifest["splits"]["train"]["num_sequences"] == 1
    assert verify(tmp_path / "out") == []


def test_raw_limit_and_env_filter(data_root, tmp_path):
    root, _, train_a, train_b = data_root
    manifest = minerl.prepare(tmp_path / "a", source="raw", path=root, limit=1)
    assert manifest["splits"]["train"]["num_sequences"] == 1
    manifest = minerl.prepare(tmp_path / "b", source="raw", path=root, envs=["MineRLNavigateExtreme-v0", "MineRLNavigate-v0"])
    assert manifest["splits"]["train"]["num_sequences"] == 3
    with pytest.raises(VidbenchError, match="no environment folder MineRLObtainDiamond-v0"):
        minerl.prepare(tmp_path / "c", source="raw", path=root, envs=["MineRLObtainDiamond-v0"])


def make_cwvae_archive(folder, counts=(2, 1), length=500):
    for split, count in zip(("train", "test"), counts):
        (folder / "minerl_navigate" / split).mkdir(parents=True)
        for i in range(count):
            write_video(folder / "minerl_navigate" / split / f"{i}.mp4", coded_video(i * 100, length), fps=10)


def test_cwvae_zip_and_folder(tmp_path):
    make_cwvae_archive(tmp_path / "src")
    archive = tmp_path / "minerl_navigate.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted((tmp_path / "src").rglob("*.mp4")):
            z.write(path, path.relative_to(tmp_path / "src").as_posix())
    from_zip = minerl.prepare(tmp_path / "z", path=archive)
    from_folder = minerl.prepare(tmp_path / "f", path=tmp_path / "src" / "minerl_navigate")
    for out in ("z", "f"):
        assert verify(tmp_path / out) == []
    assert from_zip["splits"]["train"]["data_sha256"] == from_folder["splits"]["train"]["data_sha256"]
    assert from_zip["splits"]["train"]["num_sequences"] == 2 and from_zip["splits"]["test"]["length"] == 500
    train = PreparedSplit(tmp_path / "z", "train")
    assert frame_code(train.sequence(1)[0]) == 100 and train.metadata(1)["item"] == "minerl_navigate/train/1.mp4"


def test_cwvae_bad_inputs(tmp_path):
    with pytest.raises(VidbenchError, match="archive.org/download/minerl_navigate/minerl_navigate.zip"):
        minerl.prepare(tmp_path / "o", path=tmp_path / "missing.zip")
    with pytest.raises(VidbenchError, match="MINERL_DATA_ROOT"):
        minerl.prepare(tmp_path / "o", source="raw", path=tmp_path / "missing-root")

    make_cwvae_archive(tmp_path / "src", counts=(2, 1))
    write_video(tmp_path / "src" / "minerl_navigate" / "train" / "1.mp4", coded_video(0, 499))  # wrong length
    (tmp_path / "src" / "minerl_navigate" / "train" / "2.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    with pytest.raises(VidbenchError, match=r"train/1\.mp4: 499 frames decoded, expected 500"):
        minerl.prepare(tmp_path / "o", path=tmp_path / "src")
    manifest = minerl.prepare(tmp_path / "o", path=tmp_path / "src", skip_bad=True)
    assert [s["file"].split(":")[-1] for s in manifest["skipped"]] == ["minerl_navigate/train/1.mp4", "minerl_navigate/train/2.mp4"]
    assert manifest["splits"]["train"]["num_sequences"] == 1

    escaping = tmp_path / "evil.zip"
    with zipfile.ZipFile(escaping, "w") as z:
        z.write(tmp_path / "src" / "minerl_navigate" / "test" / "0.mp4", "minerl_navigate/test/0.mp4")
        z.writestr("minerl_navigate/../../etc/x.mp4", b"x")
    with pytest.raises(VidbenchError, match="escapes the archive"):
        minerl.prepare(tmp_path / "e", path=escaping)


def test_raw_resume_after_interrupt(data_root, tmp_path, monkeypatch):
    from vidbench.data.store import SplitWriter

    root = data_root[0]
    fresh = minerl.prepare(tmp_path / "fresh", source="raw", path=root)
    monkeypatch.setattr(SplitWriter.__init__, "__defaults__", (500 * 64 * 64 * 3,))  # one sequence per shard
    real, calls, interrupt = minerl.aligned_frames, [], [True]

    def interrupted(stream_dir):
        calls.append(stream_dir.name)
        if interrupt[0] and len(calls) == 3:
            raise KeyboardInterrupt
        return real(stream_dir)

    monkeypatch.setattr(minerl, "aligned_frames", interrupted)
    with pytest.raises(KeyboardInterrupt):
        minerl.prepare(tmp_path / "m", source="raw", path=root)
    assert calls == [data_root[1], data_root[2], data_root[3]]  # test stream, then the train streams
    calls.clear()
    interrupt[0] = False
    resumed = minerl.prepare(tmp_path / "m", source="raw", path=root)
    # A shard is complete once the next sequence arrives: the test piece and train_a's second piece were
    # still buffered, so those streams are decoded again; train_a's first piece is not written twice.
    assert calls == [data_root[1], data_root[2], data_root[3]]
    train = PreparedSplit(tmp_path / "m", "train")
    assert [train.metadata(i)["item"] for i in range(len(train))] == [
        f"{data_root[2]}#0", f"{data_root[2]}#1", f"{data_root[3]}#0"]
    for split in ("train", "test"):
        assert resumed["splits"][split]["data_sha256"] == fresh["splits"][split]["data_sha256"]


def test_cli(data_root, tmp_path):
    from click.testing import CliRunner

    from vidbench.cli import main

    root = data_root[0]
    out = tmp_path / "store"
    result = CliRunner().invoke(main, ["prepare", "minerl", "--source", "raw", "--path", str(root), "--env",
                                       "MineRLNavigate-v0", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "train: 2 sequences, frames 500-500" in result.output  # not the stream under NavigateExtreme
    result = CliRunner().invoke(main, ["prepare", "minerl", "--path", str(tmp_path / "none.zip"), "--out", str(out)])
    assert isinstance(result.exception, VidbenchError) and "archive.org" in str(result.exception)
