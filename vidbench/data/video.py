"""Decode and check whole videos (mp4, avi) with OpenCV, for every builder that reads video files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vidbench.errors import VidbenchError


def read_video(path, *, size: tuple[int, int] | None = None, frames: int | None = None,
               grayscale: bool = False, resize: bool = False, name: str | None = None) -> np.ndarray:
    """Decode every frame to uint8 [T,H,W,C] RGB (or C=1 with grayscale).

    size=(H,W): with resize=False a frame of another size is an error; with resize=True frames are
    resized with area interpolation (the right filter for downsampling). frames: exact count required.
    `name` labels the file in errors (e.g. "archive.zip:train/0.mp4").
    """
    import cv2

    label = name or str(path)
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise VidbenchError(f"{label}: cannot open video (missing, not a video, or an unsupported codec)")
    out = []
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if size is not None and frame.shape[:2] != tuple(size):
                if not resize:
                    raise VidbenchError(f"{label}: frame size {frame.shape[1]}x{frame.shape[0]}, expected {size[1]}x{size[0]}")
                frame = cv2.resize(frame, (size[1], size[0]), interpolation=cv2.INTER_AREA)
            if grayscale:
                frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)[..., None]
            else:
                frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            out.append(frame)
    finally:
        capture.release()
    if not out:
        raise VidbenchError(f"{label}: no frame could be decoded")
    if frames is not None and len(out) != frames:
        raise VidbenchError(f"{label}: {len(out)} frames decoded, expected {frames}")
    return np.stack(out)


def write_video(path, video: np.ndarray, fps: float = 10.0, codec: str = "mp4v") -> None:
    """Write uint8 [T,H,W,C] (C = 1 or 3, RGB) with OpenCV; used by tests and by `vidbench sample`.

    OpenCV reports no write errors (a full disk gives a short, unplayable file), so the video is written
    under a temporary name, read back and counted, and renamed into place only when every frame is there."""
    import cv2

    from vidbench.fileio import atomic_output

    path = Path(path)
    height, width = video.shape[1:3]
    with atomic_output(path, suffix=path.suffix) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*codec), fps, (width, height), video.shape[3] == 3)
        if not writer.isOpened():
            raise VidbenchError(f"{path}: OpenCV cannot write {codec} video here")
        try:
            for frame in video:
                writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR) if frame.shape[2] == 3 else frame[..., 0])
        finally:
            writer.release()
        capture = cv2.VideoCapture(str(tmp))
        written = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
        capture.release()
        if written != len(video):
            raise VidbenchError(f"{path}: cannot write (the video writer stored {written} of {len(video)} frames; "
                                f"disk full?)")
