"""KTH builder on per-action zips and loose avi files written here (160x120 grayscale, OpenCV MJPG avi)."""

import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from vidbench.cli import main
from vidbench.data import kth
from vidbench.data.store import PreparedSplit, verify
from vidbench.data.video import write_video
from vidbench.errors import VidbenchError

# The irregularities of the real 00sequences.txt: a header, tabs and spaces, missing commas, a short line,
# a video without a line (person21_walking_d1 below).
SEQUENCES = """\
Number of frames for each sequence

person01_boxing_d1\t\tframes\t1-10, 11-20, 21-30, 31-40
person01_boxing_d2  frames 1-12,13-25 ,26 - 33,34-41
person17_boxing_d1\t\tframes\t1-9, 10-19
person21_boxing_d1 frames\t1-20, 21-40, 41-60, 61-75

person25_running_d4\t\tframes\t5-30, 31-50, 51-70, 71-80
"""


def avi(path, frames: int, value: int, size=(120, 160)):
    video = np.full((frames, *size, 1), value, dtype=np.uint8)
    video[:, : size[0] // 2, : size[1] // 2] = 255 - value  # a quadrant of another shade, to see the resize
    write_video(path, video, fps=25, codec="MJPG")


@pytest.fixture(scope="module")
def kth_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("kth")
    work = root / "work"
    work.mkdir()
    lengths = {"person01_boxing_d1": 40, "person01_boxing_d2": 41, "person17_boxing_d1": 19,
               "person21_boxing_d1": 75, "person25_running_d4": 80, "person21_walking_d1": 33}
    for i, (stem, frames) in enumerate(lengths.items()):
        avi(work / f"{stem}_uncomp.avi", frames, 30 + 20 * i)
    data = root / "data"
    data.mkdir()
    for action in ("boxing", "running"):  # the per-action zips hold the avi files at their root
        with zipfile.ZipFile(data / f"{action}.zip", "w") as z:
            for stem in lengths:
                if f"_{action}_" in stem:
                    z.write(work / f"{stem}_uncomp.avi", f"{stem}_uncomp.avi")
    (data / "walking").mkdir()
    (work / "person21_walking_d1_uncomp.avi").rename(data / "walking" / "person21_walking_d1_uncomp.avi")
    (data / "00sequences.txt").write_text(SEQUENCES)
    return data, lengths


def test_parse_sequences_tolerates_the_real_irregularities():
    ranges = kth.parse_sequences(SEQUENCES)
    assert ranges["person01_boxing_d1"] == [[1, 10], [11, 20], [21, 30], [31, 40]]
    assert ranges["person01_boxing_d2"] == [[1, 12], [13, 25], [26, 33], [34, 41]]
    assert ranges["person17_boxing_d1"] == [[1, 9], [10, 19]]
    assert "person21_walking_d1" not in ranges and len(ranges) == 5


def test_svg_split_whole_videos(kth_dir, tmp_path):
    data, lengths = kth_dir
    out = tmp_path / "kth"
    manifest = kth.prepare(out, path=data)
    assert verify(out) == []
    train, test = PreparedSplit(out, "train"), PreparedSplit(out, "test")
    train_items = [train.metadata(i)["item"] for i in range(len(train))]
    test_items = [test.metadata(i)["item"] for i in range(len(test))]
    assert train_items == ["person01_boxing_d1", "person01_boxing_d2", "person17_boxing_d1"]
    assert test_items == ["person21_boxing_d1", "person21_walking_d1", "person25_running_d4"]
    for split, items in ((train, train_items), (test, test_items)):
        for i, stem in enumerate(items):
            assert split.sequence(i).shape == (lengths[stem], 64, 64, 1)  # whole videos, variable length
    meta = test.metadata(2)
    assert (meta["person"], meta["action"], meta["scenario"], meta["num_frames"]) == (25, "running", 4, 80)
    assert meta["sequences"] == [[5, 30], [31, 50], [51, 70], [71, 80]]
    assert test.metadata(1)["sequences"] == [] and manifest["no_sequence_entry"] == ["person21_walking_d1"]
    assert manifest["splits"]["test"]["min_length"] == 33 and manifest["splits"]["test"]["max_length"] == 80
    # 160x120 -> 64x64: the top-left quadrant (another shade) stays the top-left quadrant.
    frame = train.sequence(0)[5, :, :, 0].astype(int)
    # MJPG is JPEG per frame: codec rounding, not float paths. Measured exact at these points (away from the
    # quadrant edge); 6 grey levels allows another JPEG build's rounding and still tells the shades (195 apart).
    assert abs(frame[10, 10] - (255 - 30)) <= 6 and abs(frame[50, 50] - 30) <= 6


def test_savp_split_and_cli(kth_dir, tmp_path):
    data, _ = kth_dir
    out = tmp_path / "k"
    result = CliRunner().invoke(main, ["prepare", "kth", "--path", str(data), "--split", "savp", "--out", str(out)])
    assert result.exit_code == 0, result.output
    test = PreparedSplit(out, "test")
    assert [test.metadata(i)["person"] for i in range(len(test))] == [17, 21, 21, 25]  # persons 17-25
    assert PreparedSplit(out, "train").manifest["params"]["train_persons"] == [1, 16]


def test_bad_inputs(kth_dir, tmp_path):
    data, _ = kth_dir
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "00sequences.txt").write_text(SEQUENCES)
    avi(bad / "person02_jogging_d1_uncomp.avi", 20, 50)
    avi(bad / "person03_jogging_d1_uncomp.avi", 20, 50, size=(64, 64))  # wrong resolution
    avi(bad / "person22_jogging_d1_uncomp.avi", 40, 50)
    whole = (bad / "person22_jogging_d1_uncomp.avi").read_bytes()
    (bad / "person22_jogging_d1_uncomp.avi").write_bytes(whole[: len(whole) // 2])  # truncated
    with pytest.raises(VidbenchError, match=r"person22_jogging_d1_uncomp\.avi: \d+ frames decoded, its header declares 40"):
        kth.prepare(tmp_path / "o", path=bad)
    assert not (tmp_path / "o" / "manifest.json").exists()
    (bad / "person22_jogging_d1_uncomp.avi").write_bytes(whole)
    with pytest.raises(VidbenchError, match=r"person03_jogging_d1_uncomp\.avi: frame size 64x64, expected 160x120"):
        kth.prepare(tmp_path / "o", path=bad)
    manifest = kth.prepare(tmp_path / "o", path=bad, skip_bad=True)
    assert [s["file"].rsplit("/", 1)[-1] for s in manifest["skipped"]] == ["person03_jogging_d1_uncomp.avi"]
    assert manifest["splits"]["train"]["num_sequences"] == 1

    with zipfile.ZipFile(bad / "jogging.zip", "w") as z:
        z.writestr("../person04_jogging_d1_uncomp.avi", b"x")
    with pytest.raises(VidbenchError, match="escapes the archive"):
        kth.prepare(tmp_path / "o2", path=bad)

    with pytest.raises(VidbenchError, match="00sequences.txt not found"):
        kth.prepare(tmp_path / "o3", path=data / "boxing.zip")
    with pytest.raises(VidbenchError, match="--split 'x'"):
        kth.prepare(tmp_path / "o4", path=data, split="x")


def test_interrupted_prepare_resumes(kth_dir, tmp_path, monkeypatch):
    data, _ = kth_dir
    fresh = kth.prepare(tmp_path / "fresh", path=data)
    real_decode, calls = kth.decode, []

    def interrupted(container, member):
        calls.append(member)
        if len(calls) == 6:  # during the train split: shards of one length each are complete by then
            raise KeyboardInterrupt
        return real_decode(container, member)

    monkeypatch.setattr(kth, "decode", interrupted)
    with pytest.raises(KeyboardInterrupt):
        kth.prepare(tmp_path / "k", path=data)
    assert not (tmp_path / "k").exists() and (tmp_path / ".k.partial").exists()
    calls.clear()
    resumed = kth.prepare(tmp_path / "k", path=data)
    # Complete shards are kept: 2 of 3 test videos and 1 of 3 train videos are not decoded again.
    assert sorted(calls) == ["person01_boxing_d2_uncomp.avi", "person17_boxing_d1_uncomp.avi", "person25_running_d4_uncomp.avi"]
    for split in ("train", "test"):
        assert resumed["splits"][split]["data_sha256"] == fresh["splits"][split]["data_sha256"]
