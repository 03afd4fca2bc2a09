"""The frames a protocol gives a model, in one file, for a model that runs outside vidbench (JAX, TensorFlow ...).

    vidbench contexts --dataset datasets/mmnist --protocol mmnist-short@1 --out ctx.npz
    ... your model predicts from ctx.npz's "context", writes preds.npy ...
    vidbench evaluate --predictions preds.npy --dataset datasets/mmnist --protocol mmnist-short@1

ctx.npz holds
    context            uint8 [N, Tc, H, W, C]  the first Tc frames of each scored test video, values 0-255
    video              int64 [N]               each one's index in the prepared test split (file order)
    predictions_shape  int64 [6]               N, S, T, H, W, C of the predictions file `evaluate` takes
    protocol, test_data_sha256                 what it was written for (str)

The predictions file (protocols.PREDICTIONS_FORMAT): row n predicts the video of context row n; T counts the predicted
frames only (frames Tc+1 .. Tc+T of the video), never the context. `evaluate` checks it exactly
(sources.PredictionsFile): another number of videos, frames or samples, or another dtype, is an error.
"""

from __future__ import annotations

import io

import numpy as np

from vidbench.data.loader import TestSequences
from vidbench.data.store import PreparedSplit
from vidbench.errors import VidbenchError
from vidbench.evaluate.protocols import check_split_size, resolve_protocol
from vidbench.fileio import atomic_write_bytes
from vidbench.locking import OutputLock, check_output_file


def protocol_split(dataset, protocol=None, horizon=None, num_videos=None, num_samples=None, reduce=None,
                   last_frame=None):
    """(test split, resolved protocol), the split checked to hold every scored video at full length."""
    split = PreparedSplit(dataset, "test", verify=True)
    split.check_data_sha256()  # the test data's hash recorded downstream is that of the frames read here
    resolved = resolve_protocol(split.dataset, protocol, horizon, num_videos, num_samples, reduce, last_frame)
    check_split_size(split, resolved, named=protocol is not None)
    TestSequences(split, resolved.num_videos, resolved.length)  # every scored video long enough
    return split, resolved


def write_contexts(dataset, out, *, protocol=None, last_frame=None, num_videos=None, num_samples=None) -> dict:
    """Write the contexts file (module docstring); returns what it holds (shapes, protocol, path)."""
    out = check_output_file(out)
    if out.exists() and not _is_contexts_file(out):  # never write over a file this command did not make
        raise VidbenchError(f"{out}: exists and is not a contexts file (`vidbench contexts`); refusing to "
                            f"overwrite it: choose another --out")
    split, p = protocol_split(dataset, protocol, num_videos=num_videos, num_samples=num_samples,
                              last_frame=last_frame)
    context = np.stack([split.sequence(i)[: p.context] for i in range(p.num_videos)])
    frame_shape = context.shape[2:]
    expected = (p.num_videos, p.num_samples, p.horizon, *frame_shape)
    buffer = io.BytesIO()
    np.savez(buffer, context=context, video=np.arange(p.num_videos, dtype=np.int64),
             predictions_shape=np.array(expected, dtype=np.int64), protocol=np.array(p.name),
             test_data_sha256=np.array(split.info["data_sha256"]))
    with OutputLock(out, "contexts file"):
        atomic_write_bytes(out, buffer.getvalue())
    return {"path": out, "protocol": p.name, "context_shape": context.shape, "predictions_shape": expected,
            "first_predicted": p.context + 1, "last_predicted": p.context + p.horizon}


def _is_contexts_file(path) -> bool:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {"context", "video", "predictions_shape", "protocol"} <= set(data.files)
    except (OSError, ValueError, AttributeError, TypeError):  # not an .npz (a plain .npy is an array: no .files)
        return False


def contexts_lines(record: dict) -> list[str]:
    n, s, t, *frame = record["predictions_shape"]
    shape = f"[{n},{t},{','.join(map(str, frame))}]" if s == 1 else f"[{n},{s},{t},{','.join(map(str, frame))}]"
    return [f"wrote {record['path']}: context uint8 {list(record['context_shape'])} for {record['protocol']}",
            f"predictions to write: uint8 {shape} (frames {record['first_predicted']}-{record['last_predicted']} "
            f"of each video, the context excluded), then `vidbench evaluate --predictions FILE` with this "
            f"command's --dataset, --protocol, --horizon, --num-videos and --num-samples"]
