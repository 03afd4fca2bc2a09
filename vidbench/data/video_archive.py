"""The authors' processed archives (Moving MNIST, MineRL Navigate, GQN Mazes) share one shape: a zip (or
its extracted folder) with one folder of fixed-length mp4 videos per split. One builder reads them all."""

from __future__ import annotations

from pathlib import Path

from vidbench.data.archive import list_videos, opened_video
from vidbench.data.items import BadInputs, write_items
from vidbench.data.store import DatasetWriter
from vidbench.data.video import read_video
from vidbench.errors import VidbenchError


def prepare_video_archive(out, archive, *, dataset: str, folders: dict[str, str], frames: dict[str, int],
                          size: tuple[int, int], grayscale: bool, layout: str, limit=None, skip_bad=False,
                          overwrite=False, progress=None) -> dict:
    """folders: split -> folder inside the archive ("test-seq1000"); frames: split -> exact frame count;
    layout: the expected layout, quoted in the error when a folder is missing."""
    names = {split: list_videos(archive, folder) for split, folder in folders.items()}
    for split, found in names.items():
        if not found:
            raise VidbenchError(f"{archive}: no {folders[split]}/*.mp4 videos (expected {layout})")
    source = {"kind": "cwvae-archive", "path": str(Path(archive).resolve())}
    with DatasetWriter(out, dataset=dataset, source=source, params={"limit": limit, "skip_bad": skip_bad},
                       overwrite=overwrite) as writer:
        bad = BadInputs(skip_bad)
        for split in sorted(folders, key=lambda s: s != "test"):  # test first: the split that must never be short

            def decode(name, split=split):
                with opened_video(archive, name) as video_path:
                    video = read_video(video_path, size=size, frames=frames[split], grayscale=grayscale,
                                       name=f"{archive}:{name}")
                return video, {}

            write_items(writer.split(split), names[split], decode, bad, limit=limit,
                        label=lambda name: f"{archive}:{name}", progress=progress, desc=f"{dataset} {split}")
        bad.add_to(writer)
        return writer.commit()
