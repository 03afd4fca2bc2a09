"""Decode throughput of the dataset builders (frames/s), each against bare OpenCV decoding in the same run.

    pytest -q -s tests/benchmarks/bench_decode.py

- mp4 64x64 RGB (MineRL / Mazes authors' archives): vidbench.data.video.read_video vs a bare
  VideoCapture.read loop.
- avi 160x120 grayscale -> 64x64 (KTH): kth.decode vs the bare read loop.
- TFRecord of 300 JPEG 84x84 frames -> 64x64 (raw GQN Mazes): read_records + mazes.decode_record vs a
  bare cv2.imdecode loop over the same JPEGs; and the optional data CRC (pure Python) in MB/s.
Prints figures only; never asserts on time.
"""

import time

import cv2
import numpy as np
import pytest

from vidbench.data import kth, mazes
from vidbench.data.tfrecord import encode_example, masked_crc32c, parse_example, read_records, write_records
from vidbench.data.video import read_video, write_video


def moving_pattern(frames: int, height: int, width: int, channels: int) -> np.ndarray:
    """Smooth moving stripes and noise: compresses like real footage, not like pure noise."""
    t, y, x = np.meshgrid(np.arange(frames), np.arange(height), np.arange(width), indexing="ij")
    base = 128 + 100 * np.sin((x + 2 * t) / 7.0) * np.cos((y - t) / 9.0)
    noise = np.random.default_rng(0).normal(0, 8, base.shape)
    video = np.clip(base + noise, 0, 255).astype(np.uint8)[..., None]
    return np.repeat(video, channels, axis=3) if channels == 3 else video


def timed(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def bare_read(path) -> int:
    capture, n = cv2.VideoCapture(str(path)), 0
    while capture.read()[0]:
        n += 1
    capture.release()
    return n


def report(name: str, frames: int, ours: float, bare: float) -> None:
    print(f"\n{name}: {frames / ours:,.0f} frames/s (bare OpenCV {frames / bare:,.0f} frames/s, "
          f"vidbench/bare time ratio {ours / bare:.2f})")


def test_mp4_64(tmp_path):
    path = tmp_path / "v.mp4"
    write_video(path, moving_pattern(500, 64, 64, 3))
    ours = timed(lambda: read_video(path, size=(64, 64), frames=500))
    report("mp4 64x64 RGB (500 frames)", 500, ours, timed(lambda: bare_read(path)))


@pytest.mark.parametrize("codec", ["XVID", "MJPG"])
def test_avi_160x120_to_64(tmp_path, codec):
    path = tmp_path / "person01_boxing_d1_uncomp.avi"
    try:
        write_video(path, moving_pattern(500, 120, 160, 1), fps=25, codec=codec)
    except Exception as e:  # an OpenCV build without that encoder
        pytest.skip(f"{codec}: {e}")
    if bare_read(path) != 500:
        pytest.skip(f"{codec}: this OpenCV cannot round-trip it")
    ours = timed(lambda: kth.decode(tmp_path, path.name))
    report(f"avi {codec} 160x120 gray -> 64x64 (500 frames)", 500, ours, timed(lambda: bare_read(path)))


def test_tfrecord_jpeg_84_to_64(tmp_path):
    video = moving_pattern(300, 84, 84, 3)
    jpegs = [cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes() for frame in video]
    payload = encode_example({"frames": jpegs, "cameras": np.zeros(1500, np.float32)})
    path = tmp_path / "0001-of-0001.tfrecord"
    write_records(path, [payload] * 2)

    def ours():
        for i, record in enumerate(read_records(path)):
            mazes.decode_record(record, f"record {i}")

    def bare():
        for record in read_records(path):
            for jpeg in parse_example(record)["frames"]:
                cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)

    report("TFRecord JPEG 84x84 -> 64x64 (2 records x 300 frames)", 600, timed(ours), timed(bare))
    crc_time = timed(lambda: masked_crc32c(payload), repeats=1)
    print(f"data CRC32C (pure Python, --check-crc): {len(payload) / crc_time / 1e6:.2f} MB/s "
          f"({len(payload) / 1e6:.2f} MB record in {crc_time:.2f} s)")
