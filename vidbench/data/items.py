"""Writing a split item by item, as every file-reading builder does: --skip-bad and resume by item name.

Without --skip-bad the first bad file stops the prepare with an error naming it (the partial store stays
and is resumed by the next run, never renamed into place). With --skip-bad the file is left out and
listed in the manifest under "skipped", so a shorter dataset is never silent.

Each sequence's metadata carries an "item" string naming where it came from ("train/12.mp4",
"MineRLNavigate-v0/v3_x#2"); a resumed run skips the items already in complete shards. Counting alone
would not do: with --skip-bad, the written prefix is not the first N items.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from contextlib import contextmanager

from vidbench.data.store import SplitWriter
from vidbench.errors import VidbenchError


class BadInputs:
    def __init__(self, skip: bool):
        self.skip = skip
        self.skipped: list[dict] = []

    @contextmanager
    def guard(self, label: str):
        """Run the block; a VidbenchError inside is re-raised, or with skip recorded and swallowed."""
        try:
            yield
        except VidbenchError as e:
            if not self.skip:
                raise
            self.skipped.append({"file": label, "error": str(e)})

    def add_to(self, writer) -> None:
        writer.extra["skipped"] = self.skipped


def written_items(split_writer: SplitWriter) -> set[str]:
    """The "item" of every sequence in the split's complete shards (those a previous run finished)."""
    items = set()
    for shard in split_writer.shards:
        meta_path = split_writer.folder.parent / shard["file"].replace(".npy", ".meta.json")
        items.update(m["item"] for m in json.loads(meta_path.read_text())["sequences"])
    if len(items) != split_writer.resume_from:
        raise VidbenchError(f"{split_writer.folder}: partial store has repeated items; delete it and rerun")
    return items


def write_items(split_writer: SplitWriter, items: Iterable[str], decode: Callable, bad: BadInputs, *,
                limit: int | None = None, label: Callable[[str], str] = str, progress=None, desc: str = "") -> int:
    """For each item not yet written: `decode(item) -> (uint8 [T,H,W,C], meta)`, add it; stop at `limit`
    sequences in the split. A bad item (VidbenchError) stops the run, or is skipped with bad.skip."""
    done = written_items(split_writer)
    count = len(done)
    items = list(items)
    for item in progress(items, desc=desc) if progress else items:
        if limit is not None and count >= limit:
            break
        if item in done:
            continue
        with bad.guard(label(item)):
            video, meta = decode(item)
            split_writer.add(video, {"item": item, **meta})
            count += 1
    return count
