"""MineRL Navigate as the CW-VAE paper uses it: 500-frame 64x64 RGB videos.

Two sources:

- `cwvae` (default): the authors' archive minerl_navigate.zip (or its extracted folder),
  minerl_navigate/{train,test}/*.mp4, one 500-frame 64x64 video per file (961 train / 225 test per the
  tfds builder). Read from the zip one member at a time, never extracted as a whole.
- `raw`: a MINERL_DATA_ROOT written by the minerl 0.3/0.4 downloader: <env>/<stream>/{recording.mp4,
  rendered.npz, metadata.json}. The authors "combined the human demonstrations for the Navigate and
  Navigate Extreme tasks and split them into non-overlapping sequences of length 500" (tfds
  minerl_navigate description). The same recording is published under several environment names
  (Navigate, NavigateDense, ...VectorObf): streams are de-duplicated by name, else test videos leak
  into training. Frames are aligned as minerl's own reader does: recording.mp4 may start with extra
  frames, so only the last len(reward)+1 frames are kept (one observation per step plus the final one),
  converted BGR -> RGB. Each stream goes wholly to test when a hash of its name falls below
  `test_fraction` (0.2: the authors' 225 / 1186), so no stream is in both splits and the rule is
  independent of what else was downloaded. The `minerl` package is not needed (nor installable on a
  current Python): its files are read directly.

    vidbench prepare minerl --path minerl_navigate.zip
    vidbench prepare minerl --source raw --path $MINERL_DATA_ROOT
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from vidbench.data.items import BadInputs, written_items
from vidbench.data.store import DatasetWriter
from vidbench.data.video import read_video
from vidbench.data.video_archive import prepare_video_archive
from vidbench.errors import VidbenchError
from vidbench.options import check_options

LENGTH = 500
SIZE = (64, 64)
ENV_PREFIX = "MineRLNavigate"  # Navigate, NavigateDense, NavigateExtreme(Dense), their VectorObf twins
TEST_FRACTION = 0.2
ARCHIVE_URL = "https://archive.org/download/minerl_navigate/minerl_navigate.zip"
CWVAE_LAYOUT = "minerl_navigate/{train,test}/*.mp4 (500-frame 64x64 RGB videos)"
RAW_LAYOUT = "<MINERL_DATA_ROOT>/MineRLNavigate*-v0/<stream>/{recording.mp4,rendered.npz,metadata.json}"


def prepare(out, *, source: str = "cwvae", path=None, envs=None, test_fraction: float = TEST_FRACTION,
            limit=None, skip_bad: bool = False, overwrite: bool = False, progress=None) -> dict:
    check_options(limit=limit, test_fraction=test_fraction)
    if source == "cwvae":
        return prepare_cwvae(out, _find_cwvae(path), limit=limit, skip_bad=skip_bad, overwrite=overwrite,
                             progress=progress)
    if source == "raw":
        return prepare_raw(out, _find_raw(path), envs=envs, test_fraction=test_fraction, limit=limit,
                           skip_bad=skip_bad, overwrite=overwrite, progress=progress)
    raise VidbenchError(f"--source {source!r}: expected 'cwvae' or 'raw'")


def _find_cwvae(path) -> Path:
    candidates = [Path(path)] if path else [Path("minerl_navigate.zip"), Path("minerl_navigate")]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise VidbenchError(
        f"{candidates[0]}: not found. Download the authors' archive from {ARCHIVE_URL} and pass it with "
        f"--path (the zip, or its extracted folder with {CWVAE_LAYOUT}); or use --source raw with a "
        f"MINERL_DATA_ROOT ({RAW_LAYOUT})")


def _find_raw(path) -> Path:
    root = path or os.environ.get("MINERL_DATA_ROOT")
    if not root or not Path(root).is_dir():
        raise VidbenchError(
            f"{root or 'MINERL_DATA_ROOT'}: no MineRL data folder (pass --path or set MINERL_DATA_ROOT; "
            f"expected {RAW_LAYOUT}, as the minerl 0.3/0.4 downloader writes it). Or use the authors' "
            f"processed archive: {ARCHIVE_URL} with --source cwvae")
    return Path(root)


def prepare_cwvae(out, archive, *, limit=None, skip_bad=False, overwrite=False, progress=None) -> dict:
    return prepare_video_archive(out, archive, dataset="minerl", folders={"train": "train", "test": "test"},
                                 frames={"train": LENGTH, "test": LENGTH}, size=SIZE, grayscale=False,
                                 layout=f"the layout of minerl_navigate.zip: {CWVAE_LAYOUT}", limit=limit,
                                 skip_bad=skip_bad, overwrite=overwrite, progress=progress)


# --- raw MINERL_DATA_ROOT ---

def is_test_stream(stream: str, test_fraction: float = TEST_FRACTION) -> bool:
    """The split rule: a fixed hash of the stream name, so a stream is in one split whatever else is there."""
    value = int.from_bytes(hashlib.sha256(stream.encode()).digest()[:8], "big")
    return value / 2**64 < test_fraction


def find_streams(root, envs=None) -> dict[str, list[Path]]:
    """stream name -> its folders, one per environment it is published under (sorted by env name)."""
    root = Path(root)
    env_dirs = sorted(d for d in root.iterdir() if d.is_dir() and (d.name in envs if envs else d.name.startswith(ENV_PREFIX)))
    if not env_dirs:
        wanted = ", ".join(envs) if envs else f"{ENV_PREFIX}*"
        raise VidbenchError(f"{root}: no environment folder {wanted} (expected {RAW_LAYOUT})")
    streams: dict[str, list[Path]] = {}
    for env_dir in env_dirs:
        for stream_dir in sorted(d for d in env_dir.iterdir() if d.is_dir() and not d.name.startswith(".")):
            streams.setdefault(stream_dir.name, []).append(stream_dir)
    return streams


def num_steps(stream_dir: Path) -> int:
    """len(reward) from rendered.npz: the recording has one observation per step plus the final one."""
    npz = stream_dir / "rendered.npz"
    if not npz.exists():
        raise VidbenchError(f"{npz}: missing (needed to align the frames of recording.mp4)")
    try:
        with np.load(npz) as data:
            return len(data["reward"])
    except (OSError, ValueError, KeyError, EOFError) as e:
        raise VidbenchError(f"{npz}: cannot read its 'reward' array ({e})") from e


def aligned_frames(stream_dir: Path) -> tuple[np.ndarray, int]:
    """(frames uint8 [len(reward)+1, 64, 64, 3] RGB, index of the first kept frame in recording.mp4)."""
    video_path = stream_dir / "recording.mp4"
    if not video_path.exists():
        raise VidbenchError(f"{video_path}: missing (stream folder without its video)")
    wanted = num_steps(stream_dir) + 1
    frames = read_video(video_path, size=SIZE)
    if len(frames) < wanted:
        raise VidbenchError(f"{video_path}: {len(frames)} frames decoded, rendered.npz has {wanted - 1} steps "
                            f"(needs {wanted} frames); the video is truncated")
    return frames[len(frames) - wanted:], len(frames) - wanted


def _stream_info(stream_dir: Path) -> dict:
    """A few fields of metadata.json worth keeping (it is optional for alignment)."""
    path = stream_dir / "metadata.json"
    if not path.exists():
        return {}
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise VidbenchError(f"{path}: not valid JSON ({e})") from e
    return {k: meta[k] for k in ("success", "duration_ms", "true_video_frame_count") if k in meta}


def prepare_raw(out, root, *, envs=None, test_fraction=TEST_FRACTION, limit=None, skip_bad=False,
                overwrite=False, progress=None) -> dict:
    streams = find_streams(root, envs)
    by_split = {"train": [], "test": []}
    for name in sorted(streams):
        by_split["test" if is_test_stream(name, test_fraction) else "train"].append(name)
    source = {"kind": "minerl-data-root", "path": str(Path(root).resolve()), "envs": sorted(envs) if envs else f"{ENV_PREFIX}*"}
    params = {"length": LENGTH, "test_fraction": test_fraction, "limit": limit, "skip_bad": skip_bad,
              "split_rule": "sha256(stream)[:8] / 2**64 < test_fraction"}
    with DatasetWriter(out, dataset="minerl", source=source, params=params, overwrite=overwrite) as writer:
        bad = BadInputs(skip_bad)
        for split in ("test", "train"):
            split_writer = writer.split(split)
            done = written_items(split_writer)
            count = len(done)
            todo = by_split[split]
            for stream in progress(todo, desc=f"minerl {split}") if progress else todo:
                if limit is not None and count >= limit:
                    break
                folders = streams[stream]
                # The first copy that has its video (copies under other env names hold the same recording).
                stream_dir = next((d for d in folders if (d / "recording.mp4").exists()), folders[0])
                with bad.guard(str(stream_dir)):
                    pieces = (num_steps(stream_dir) + 1) // LENGTH
                    items = [f"{stream}#{k}" for k in range(pieces)]
                    if all(item in done for item in items):
                        continue
                    frames, offset = aligned_frames(stream_dir)
                    info = _stream_info(stream_dir)
                    for k, item in enumerate(items):
                        if limit is not None and count >= limit:
                            break
                        if item in done:
                            continue
                        meta = {"item": item, "stream": stream, "envs": [d.parent.name for d in folders],
                                "piece": k, "recording_frame": offset + k * LENGTH, **info}
                        split_writer.add(np.ascontiguousarray(frames[k * LENGTH:(k + 1) * LENGTH]), meta)
                        count += 1
        bad.add_to(writer)
        writer.extra["streams"] = {split: len(names) for split, names in by_split.items()}
        writer.extra["duplicate_streams"] = sum(len(folders) > 1 for folders in streams.values())
        return writer.commit()
