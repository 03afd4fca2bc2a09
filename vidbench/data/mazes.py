"""GQN Mazes as the CW-VAE paper uses it: 300-frame 64x64 RGB videos of a camera moving through a maze.

Two sources:

- `cwvae` (default): the authors' archive gqn_mazes.zip (or its extracted folder), {train,test}/*.mp4,
  one 300-frame 64x64 video per file; read from the zip one member at a time.
- `tfrecord`: DeepMind's raw gqn-datasets "mazes" files (gs://gqn-dataset/mazes/{train,test}/
  NNNN-of-1080.tfrecord and NNNN-of-0120.tfrecord). Each record is a tf.train.Example with
  'frames' (300 JPEG-encoded 84x84 images) and 'cameras' (300 x 5 floats: x, y, z, yaw, pitch), the
  feature map of deepmind/gqn-datasets' data_reader.py. Frames are resized to 64x64 with area
  interpolation; cameras are kept in the metadata. Read one record at a time with the built-in reader
  (vidbench.data.tfrecord, no TensorFlow), so memory stays flat over the 100+ GB; --limit stops early.
  These bytes are not identical to the authors' mp4s (their re-encoding is not published); the
  manifest records which source a store came from.

    vidbench prepare mazes --path gqn_mazes.zip
    vidbench prepare mazes --source tfrecord --path mazes/ --limit 1000
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vidbench.data.archive import natural_key
from vidbench.data.items import BadInputs, written_items
from vidbench.data.store import DatasetWriter
from vidbench.data.tfrecord import parse_example, read_records
from vidbench.data.video_archive import prepare_video_archive
from vidbench.errors import VidbenchError
from vidbench.options import check_options

LENGTH = 300
SIZE = (64, 64)
RAW_SIZE = (84, 84)
CAMERA_PARAMS = 5
ARCHIVE_URL = "https://archive.org/download/gqn_mazes/gqn_mazes.zip"
RAW_URL = "gs://gqn-dataset/mazes (gsutil -m cp -R gs://gqn-dataset/mazes .)"
CWVAE_LAYOUT = "{train,test}/*.mp4 (300-frame 64x64 RGB videos)"
RAW_LAYOUT = "mazes/{train,test}/*.tfrecord"


def prepare(out, *, source: str = "cwvae", path=None, check_crc: bool = False, limit=None,
            skip_bad: bool = False, overwrite: bool = False, progress=None) -> dict:
    check_options(limit=limit)
    if source == "cwvae":
        return prepare_cwvae(out, _find(path, ["gqn_mazes.zip", "gqn_mazes"]), limit=limit, skip_bad=skip_bad,
                             overwrite=overwrite, progress=progress)
    if source == "tfrecord":
        return prepare_tfrecord(out, _find(path, ["mazes"]), check_crc=check_crc, limit=limit,
                                skip_bad=skip_bad, overwrite=overwrite, progress=progress)
    raise VidbenchError(f"--source {source!r}: expected 'cwvae' or 'tfrecord'")


def _find(path, defaults: list[str]) -> Path:
    candidates = [Path(path)] if path else [Path(d) for d in defaults]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise VidbenchError(
        f"{candidates[0]}: not found. Download the authors' archive from {ARCHIVE_URL} (layout "
        f"{CWVAE_LAYOUT}) and pass it with --path; or the raw TFRecords from {RAW_URL} "
        f"(layout {RAW_LAYOUT}) with --source tfrecord --path mazes/")


def prepare_cwvae(out, archive, *, limit=None, skip_bad=False, overwrite=False, progress=None) -> dict:
    return prepare_video_archive(out, archive, dataset="mazes", folders={"train": "train", "test": "test"},
                                 frames={"train": LENGTH, "test": LENGTH}, size=SIZE, grayscale=False,
                                 layout=f"the layout of gqn_mazes.zip: {CWVAE_LAYOUT}", limit=limit,
                                 skip_bad=skip_bad, overwrite=overwrite, progress=progress)


# --- raw DeepMind TFRecords ---

def tfrecord_files(root) -> dict[str, list[Path]]:
    root = Path(root)
    files = {}
    for split in ("train", "test"):
        found = [p for p in root.rglob("*.tfrecord") if p.parent.name == split]
        if not found:
            raise VidbenchError(f"{root}: no {split}/*.tfrecord files (expected DeepMind's layout "
                                f"{RAW_LAYOUT}, from {RAW_URL})")
        files[split] = sorted(found, key=lambda p: natural_key(p.as_posix()))
    return files


def decode_record(payload: bytes, label: str) -> tuple[np.ndarray, np.ndarray]:
    """One serialized Example -> (frames uint8 [300,64,64,3] RGB, cameras float32 [300,5])."""
    import cv2

    try:
        example = parse_example(payload)
    except ValueError as e:
        raise VidbenchError(f"{label}: {e}") from e
    jpegs, cameras = example.get("frames"), example.get("cameras")
    if not isinstance(jpegs, list) or len(jpegs) != LENGTH:
        raise VidbenchError(f"{label}: 'frames' has {len(jpegs) if jpegs is not None else 'no'} images, expected {LENGTH}")
    if not isinstance(cameras, np.ndarray) or cameras.dtype != np.float32 or cameras.size != LENGTH * CAMERA_PARAMS:
        raise VidbenchError(f"{label}: 'cameras' is not {LENGTH}x{CAMERA_PARAMS} floats")
    video = np.empty((LENGTH, *SIZE, 3), dtype=np.uint8)
    for t, jpeg in enumerate(jpegs):
        frame = cv2.imdecode(np.frombuffer(jpeg, dtype=np.uint8), cv2.IMREAD_COLOR) if jpeg else None
        if frame is None:
            raise VidbenchError(f"{label}: frame {t} is not a decodable JPEG")
        if frame.shape[:2] != RAW_SIZE:
            raise VidbenchError(f"{label}: frame {t} is {frame.shape[1]}x{frame.shape[0]}, expected 84x84")
        small = cv2.resize(frame, (SIZE[1], SIZE[0]), interpolation=cv2.INTER_AREA)
        video[t] = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
    return video, cameras.reshape(LENGTH, CAMERA_PARAMS)


def prepare_tfrecord(out, root, *, check_crc=False, limit=None, skip_bad=False, overwrite=False,
                     progress=None) -> dict:
    files = tfrecord_files(root)
    source = {"kind": "gqn-tfrecord", "path": str(Path(root).resolve())}
    params = {"length": LENGTH, "resize": "84->64 area", "limit": limit, "skip_bad": skip_bad}
    with DatasetWriter(out, dataset="mazes", source=source, params=params, overwrite=overwrite) as writer:
        bad = BadInputs(skip_bad)
        for split in ("test", "train"):
            split_writer = writer.split(split)
            done = written_items(split_writer)
            count = len(done)
            for path in progress(files[split], desc=f"mazes {split}") if progress else files[split]:
                if limit is not None and count >= limit:
                    break
                with bad.guard(str(path)):  # a framing error loses the rest of the file
                    for index, payload in enumerate(read_records(path, check_crc=check_crc)):
                        if limit is not None and count >= limit:
                            break
                        item = f"{path.name}#{index}"
                        if item in done:
                            continue
                        with bad.guard(f"{path}#{index}"):
                            video, cameras = decode_record(payload, f"{path}: record {index}")
                            meta = {"item": item, "file": path.name, "record": index,
                                    "cameras": np.round(cameras.astype(np.float64), 5).tolist()}
                            split_writer.add(video, meta)
                            count += 1
        bad.add_to(writer)
        return writer.commit()
