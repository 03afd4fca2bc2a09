"""KTH Action: 25 persons x 6 actions x 4 scenarios, 160x120 grayscale avi at 25 fps -> 64x64x1.

Raw files (https://www.csc.kth.se/cvap/actions/): one zip per action (boxing.zip, handclapping.zip,
handwaving.zip, jogging.zip, running.zip, walking.zip) holding person{01-25}_{action}_d{1-4}_uncomp.avi
(599 videos: person13_handclapping_d3 does not exist), and 00sequences.txt, which lists for each video
the frame ranges (1-based, inclusive) of its 4 action repetitions. --path is a folder holding the zips
and/or the extracted avi files (at any depth) and 00sequences.txt, or one zip.

Frames are resized from 160x120 to 64x64 (aspect not kept, as SVG and SRVP do) with area interpolation.
Whole videos are kept (variable length; a shard holds one length), with action, person, scenario and the
sequence ranges as metadata. 00sequences.txt is written by hand: spacing varies (tabs, spaces, commas
or not), some videos have no line, some lines list fewer than 4 ranges; all of that is accepted, and
videos without a line are listed in the manifest.

Person split (--split): `svg` (default) trains on persons 1-20 and tests on 21-25, as SVG (Denton &
Fergus 2018) and SRVP (Franceschi et al. 2020) do; `savp` trains on 1-16 and tests on 17-25 (SAVP, OpenSTL).
The default is svg because the stochastic latent-variable models closest to CW-VAE report KTH on it,
and it leaves 20 persons for training.

Protocol kth@1 (vidbench/evaluate/protocols.py): 36 context frames, as for every vidbench dataset (one step of CW-VAE's
top level), then 64 predicted frames: 100 frames = 4 s at 25 fps, the mean length of one KTH action
repetition, and far longer than the 30-40 frames SVG/SRVP predict. The first 100 test videos in file
order (persons 21-24 and four videos of person 25 with the svg split), from frame 0 of each video.

    vidbench prepare kth --path ~/kth            # boxing.zip ... walking.zip + 00sequences.txt
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import numpy as np

from vidbench.data.archive import opened_video, zip_names
from vidbench.data.items import BadInputs, write_items
from vidbench.data.store import DatasetWriter
from vidbench.data.video import read_video
from vidbench.errors import VidbenchError
from vidbench.options import check_options

ACTIONS = ("boxing", "handclapping", "handwaving", "jogging", "running", "walking")
RAW_SIZE = (120, 160)
SIZE = (64, 64)
SPLITS = {"svg": 20, "savp": 16}  # last training person; the rest are test persons
DEFAULT_SPLIT = "svg"
VIDEO_NAME = re.compile(r"^person(\d{2})_(" + "|".join(ACTIONS) + r")_d([1-4])_uncomp\.avi$")
SEQUENCE_LINE = re.compile(r"^\s*(person\d{2}_[a-z]+_d[1-4])\b(.*)$")
RANGE = re.compile(r"(\d+)\s*-\s*(\d+)")
URL = "https://www.csc.kth.se/cvap/actions/"


def parse_sequences(text: str, problems: list | None = None) -> dict[str, list[list[int]]]:
    """00sequences.txt -> {"person01_boxing_d1": [[1, 95], [96, 185], ...]} (1-based, inclusive).
    A line with an impossible range (5-3, 0-9) is left out and, given `problems`, reported there."""
    out = {}
    for number, line in enumerate(text.splitlines(), 1):
        match = SEQUENCE_LINE.match(line)
        if match:
            ranges = [[int(a), int(b)] for a, b in RANGE.findall(match.group(2))]
            wrong = [f"{a}-{b}" for a, b in ranges if not 1 <= a <= b]
            if wrong and problems is not None:
                problems.append(f"line {number}: range {', '.join(wrong)} of {match.group(1)} is not first-last")
            elif not wrong:
                out[match.group(1)] = ranges
    return out


def read_sequences(path: Path, bad: BadInputs) -> dict[str, list[list[int]]]:
    """Parse 00sequences.txt; a binary or empty file, or a bad line, is an error, or with --skip-bad
    left out (the whole file: every video then has no ranges) and listed in the manifest's "skipped"."""
    if not path.is_file():
        raise VidbenchError(f"{path}: not a file (expected KTH's 00sequences.txt)")
    data = path.read_bytes()
    problems: list[str] = []
    try:
        text = data.decode("ascii")  # KTH's file is plain ASCII
        ranges = parse_sequences(text, problems)
    except UnicodeDecodeError:
        text, ranges = "", {}
    with bad.guard(str(path)):
        if "\0" in text or (data and not text):
            raise VidbenchError(f"{path}: binary file, not KTH's 00sequences.txt")
        if not ranges and not problems:
            raise VidbenchError(f"{path}: no 'personNN_action_dN frames a-b, ...' line (empty or not KTH's "
                                f"00sequences.txt)")
    for problem in problems:
        with bad.guard(f"{path}: {problem.split(':')[0]}"):
            raise VidbenchError(f"{path}: {problem}")
    return ranges if text and "\0" not in text else {}


def find_videos(path) -> tuple[dict[str, tuple[Path, str]], Path | None]:
    """{video stem: (container, member)} for every KTH avi in a folder (loose or inside zips) or a zip,
    and the 00sequences.txt found there (None if absent)."""
    path = Path(path)
    videos: dict[str, tuple[Path, str]] = {}
    sequences = None
    zips = [path] if path.is_file() else sorted(path.rglob("*.zip"))
    if path.is_dir():
        for avi in sorted(path.rglob("*.avi")):
            if VIDEO_NAME.match(avi.name):
                videos.setdefault(avi.name[: -len("_uncomp.avi")], (path, avi.relative_to(path).as_posix()))
        sequences = next(iter(sorted(path.rglob("00sequences.txt"))), None)
    for zip_path in zips:
        for name in zip_names(zip_path):
            base = PurePosixPath(name).name
            if VIDEO_NAME.match(base):
                videos.setdefault(base[: -len("_uncomp.avi")], (zip_path, name))
    return videos, sequences


def video_info(stem: str) -> dict:
    person, action, scenario = VIDEO_NAME.match(stem + "_uncomp.avi").groups()
    return {"person": int(person), "action": action, "scenario": int(scenario)}


def video_label(container: Path, member: str) -> str:
    """How errors name a video: zip:member, or its path."""
    return f"{container}:{member}" if container.is_file() else str(container / member)


def decode(container: Path, member: str) -> np.ndarray:
    """uint8 [T,64,64,1]; the raw frames must be 160x120."""
    import cv2

    name = video_label(container, member)
    with opened_video(container, member) as video_path:
        frames = read_video(video_path, size=RAW_SIZE, grayscale=True, name=name)
        # A truncated avi decodes silently up to the cut; its header still states the full frame count.
        capture = cv2.VideoCapture(str(video_path))
        declared = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        capture.release()
    if len(frames) < declared:
        raise VidbenchError(f"{name}: {len(frames)} frames decoded, its header declares {declared} (truncated?)")
    small = [cv2.resize(f, (SIZE[1], SIZE[0]), interpolation=cv2.INTER_AREA) for f in frames]
    return np.stack(small)[..., None]


def prepare(out, *, path=None, sequences=None, split: str = DEFAULT_SPLIT, limit=None, skip_bad: bool = False,
            overwrite: bool = False, progress=None) -> dict:
    check_options(limit=limit)
    if split not in SPLITS:
        raise VidbenchError(f"--split {split!r}: expected one of {', '.join(SPLITS)}")
    path = Path(path or "kth")
    if not path.exists():
        raise VidbenchError(f"{path}: not found. Download the six per-action zips and 00sequences.txt from "
                            f"{URL} into one folder and pass it with --path")
    videos, found_sequences = find_videos(path)
    if not videos:
        raise VidbenchError(f"{path}: no KTH videos (person{{01-25}}_{{action}}_d{{1-4}}_uncomp.avi, loose or "
                            f"in the per-action zips from {URL})")
    sequences_path = Path(sequences) if sequences else found_sequences
    if sequences_path is None or not sequences_path.exists():
        raise VidbenchError(f"{sequences_path or path / '00sequences.txt'}: 00sequences.txt not found (from {URL}); "
                            f"pass it with --sequences")
    bad = BadInputs(skip_bad)
    ranges = read_sequences(sequences_path, bad)  # before any write: a bad file stops here
    last_train = SPLITS[split]
    by_split = {"train": [], "test": []}
    for stem in sorted(videos):
        by_split["train" if video_info(stem)["person"] <= last_train else "test"].append(stem)
    source = {"kind": "kth-avi", "path": str(path.resolve()), "sequences": str(sequences_path.resolve())}
    params = {"split": split, "train_persons": [1, last_train], "test_persons": [last_train + 1, 25],
              "size": list(SIZE), "resize": "160x120->64x64 area", "limit": limit, "skip_bad": skip_bad}
    with DatasetWriter(out, dataset="kth", source=source, params=params, overwrite=overwrite) as writer:

        def decode_item(stem):
            video = decode(*videos[stem])
            return video, {**video_info(stem), "file": videos[stem][1], "num_frames": len(video),
                           "sequences": ranges.get(stem, [])}

        for name in ("test", "train"):
            write_items(writer.split(name), by_split[name], decode_item, bad, limit=limit,
                        label=lambda stem: video_label(*videos[stem]), progress=progress, desc=f"kth {name}")
        bad.add_to(writer)
        writer.extra["no_sequence_entry"] = sorted(stem for stem in videos if stem not in ranges)
        return writer.commit()
