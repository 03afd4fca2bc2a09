"""Where the predictions being scored come from: a model run open-loop, or a file of predictions.

Both give uint8 frames [videos, samples, horizon, H, W, C], the frames the run folder caches and every metric
scores, so scoring a model directly and scoring its exported predictions with `--predictions` give identical
numbers, with one exception (issue 12): a model whose predict() can return its raw decoder output (CW-VAE and its
RSSM / NoTmpAbs variants: unclipped tanh floats) also gives those floats, and the metrics registered with
`scores_raw` (ssim_cwvae, psnr_cwvae: the authors' eval scored raw floats) score them instead. The results
file's "conventions" says which frames each metric scored.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from vidbench.data.loader import to_model_input, to_uint8_frames
from vidbench.errors import VidbenchError, check_file
from vidbench.fileio import sha256_file
from vidbench.models.base import sampling_generator

# Frames converted to uint8 per step: the model's float output is never copied whole.
_CONVERT_FRAMES = 64


def batch_seed(seed: int, batch_index: int) -> int:
    """Seed of one batch's sampling generator: depends on (seed, batch) only, never on rank or resume."""
    return int(np.random.SeedSequence([seed, batch_index]).generate_state(1)[0])


class ModelSource:
    """Open-loop predictions of a VideoModel: context in, `horizon` frames out, never fed back."""

    def __init__(self, model, identity: dict, device: torch.device):
        self.model = model.to(device).eval()
        self.identity = identity
        self.device = device
        self.name = identity["name"]
        self.raw = bool(getattr(model, "raw_output", False))  # predict(raw=True) gives unclipped floats
        self.last_raw = None  # float32 [V,S,horizon,H,W,C] of the last predictions() call, when self.raw

    def predictions(self, videos: list[int], context: np.ndarray, horizon: int, num_samples: int,
                    seed: int) -> np.ndarray:
        """context uint8 [V,Tc,H,W,C] -> uint8 [V,S,horizon,H,W,C]. NaN/inf frames raise, naming the video.
        With self.raw, the unclipped float frames of the same call are kept in self.last_raw (the uint8 frames
        are those floats clamped and rounded, exactly as without raw)."""
        # The same samples on every device, so a zoo model's GPU results reproduce here (vidbench/zoo_reproduce.py).
        generator = sampling_generator(seed)
        x = to_model_input(torch.from_numpy(np.ascontiguousarray(context)).to(self.device))
        cuda = [self.device] if self.device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=cuda):
            torch.manual_seed(seed)  # models that draw from the global generator stay seeded; the caller's state is kept
            kwargs = {"raw": True} if self.raw else {}
            pred = self.model.predict(x, horizon, num_samples=num_samples, generator=generator, **kwargs)
        expected = (len(videos), num_samples, horizon, *x.shape[2:])
        if tuple(pred.shape) != expected:
            raise VidbenchError(f"model {self.name}: predict() returned shape {tuple(pred.shape)}, expected {expected}")
        out = np.empty((len(videos), num_samples, horizon, *context.shape[2:]), dtype=np.uint8)
        raw = np.empty(out.shape, dtype=np.float32) if self.raw else None
        for t0 in range(0, horizon, _CONVERT_FRAMES):
            chunk = pred[:, :, t0 : t0 + _CONVERT_FRAMES]
            bad = ~torch.isfinite(chunk.flatten(3)).all(-1)  # [V,S,t]
            if bad.any():
                v, s, t = (int(i) for i in bad.nonzero()[0])
                raise VidbenchError(
                    f"model {self.name} produced NaN/inf in test video #{videos[v]} (sample {s}, predicted frame "
                    f"{t0 + t}); nothing averaged, no results file written"
                )
            out[:, :, t0 : t0 + chunk.shape[2]] = to_uint8_frames(chunk).cpu().numpy()
            if raw is not None:
                raw[:, :, t0 : t0 + chunk.shape[2]] = chunk.float().movedim(-3, -1).cpu().numpy()
        self.last_raw = raw
        return out


def open_source(model, preset, checkpoint, predictions, protocol, frame_shape, device, split=None):
    """A predictions file (`model` is then only its label), a VideoModel object, or a model to load."""
    if predictions is not None:
        first = (lambda: split.sequence(0)[: protocol.context]) if split is not None else None
        source = PredictionsFile(predictions, num_videos=protocol.num_videos, horizon=protocol.horizon,
                                 num_samples=protocol.num_samples, frame_shape=frame_shape,
                                 context=protocol.context, first_context=first)
        if model is not None:
            source.identity["name"] = str(model)
        return source
    if isinstance(model, torch.nn.Module):
        return ModelSource(model, in_process_identity(model, model.config.get("name", type(model).__name__)), device)
    return load_model(model, preset, checkpoint, device)


def in_process_identity(model, name: str) -> dict:
    """What a row of a model evaluated as it is (an object, or an outside model ready-trained) records: its
    parameters and a sha256 of its weights, which also keys the evaluation cache (other weights: re-scored)."""
    return {"name": name, "config": model.config, "checkpoint": None, "checkpoint_sha256": None,
            "parameters": model.num_parameters(), "weights_sha256": model.weights_sha256()}


def load_model(name: str | None, preset: str | None, checkpoint, device: torch.device) -> ModelSource:
    """A trained model from a checkpoint file or run folder, or an untrained parameter-free predictor."""
    from vidbench.models import create_model

    if checkpoint is not None:
        from vidbench.train import model_from_checkpoint
        from vidbench.train.checkpoint import checkpoint_path, read_checkpoint
        from vidbench.train.zoo import ZOO_PREFIX, check_digest, find_zoo

        check = None
        if str(checkpoint).startswith(ZOO_PREFIX):  # zoo:<name>: the manifest's sha256 checked on the bytes loaded
            checkpoint, expected, manifest = find_zoo(str(checkpoint)[len(ZOO_PREFIX):])
            check = lambda digest: check_digest(checkpoint, digest, expected, manifest)  # noqa: E731
        path = check_file(checkpoint, "checkpoint")
        ckpt_file = checkpoint_path(path)
        state, sha256 = read_checkpoint(ckpt_file, check_sha256=check)  # the hash of the bytes loaded
        model = model_from_checkpoint(state, ckpt_file)
        family = model.config.get("name")
        if name is not None and family is not None and name != family:
            raise VidbenchError(f"{path}: checkpoint holds a {family!r} model, --model says {name!r}")
        # What the row is: how long it trained (the page says so beside the numbers).
        identity = {"name": family or name, "config": model.config, "checkpoint": ckpt_file.name,
                    "checkpoint_sha256": sha256, "trained_steps": int(state.get("step", 0)),
                    "training_seconds": round(float(state.get("elapsed", 0.0)), 1),
                    "parameters": model.num_parameters()}
        if state.get("record"):  # an exported weights file says how it was trained (vidbench export)
            identity["record"] = state["record"]
        if path.is_dir():
            identity["run"] = path.resolve().name
        elif ckpt_file.name != "checkpoint.pt":  # a named checkpoint file labels its row (cwvae-reference.pt)
            identity["run"] = ckpt_file.stem
        return ModelSource(model, identity, device)
    if name is None:
        raise VidbenchError("evaluate: give --model NAME, --checkpoint PATH or --predictions FILE")
    model = create_model(name, preset)
    if model.num_parameters() > 0 and model.needs_training:
        # An untrained network would give numbers that look like results and mean nothing. (random-frame,
        # which learns from data without parameters, refuses by itself until it has seen frames.)
        raise VidbenchError(f"model {name!r} must be trained first: pass --checkpoint (a run folder or .pt file)"
                            + ("; a model that loads its own trained weights sets needs_training = False"
                               if ":" in name else ""))
    if model.num_parameters() > 0:  # arrived trained (an outside model's own weights): which weights, recorded
        return ModelSource(model, in_process_identity(model, name), device)
    return ModelSource(model, {"name": name, "config": model.config, "checkpoint": None,
                               "checkpoint_sha256": None}, device)


class PredictionsFile:
    """Another framework's predictions, checked exactly against the protocol (contexts.PREDICTIONS_FORMAT):
    .npy or .npz of uint8 [N,T,H,W,C] (or [N,S,T,H,W,C] for S samples) holding the protocol's N videos in
    order and its T predicted frames only. Any other count is an error saying what was expected, never a cut:
    a file that also holds the context frames (T = context + horizon, its first frames equal to the test
    videos' own) is refused with the slice that fixes it. .npy and uncompressed .npz are memory-mapped."""

    def __init__(self, path, *, num_videos: int, horizon: int, num_samples: int, frame_shape: tuple,
                 context: int | None = None, first_context=None):
        self.path = check_file(path, "predictions file")
        self.array = _open_array(self.path)
        a = self.array
        if a.ndim == 5:
            a = a[:, None]
        if a.ndim != 6:
            raise VidbenchError(f"{self.path}: predictions must be uint8 [N,T,H,W,C] (or [N,S,T,H,W,C]); got shape {self.array.shape}")
        if a.dtype != np.uint8:
            raise VidbenchError(f"{self.path}: {_dtype_problem(a)}")
        n, s, t = a.shape[:3]
        if tuple(a.shape[3:]) != tuple(frame_shape):
            raise VidbenchError(f"{self.path}: frames are {tuple(a.shape[3:])} (H,W,C), the test videos are {tuple(frame_shape)}")
        if n != num_videos:
            raise VidbenchError(f"{self.path}: {n} videos, the protocol scores exactly {num_videos} (the first "
                                f"{num_videos} test videos, in order: `vidbench contexts` writes their context "
                                f"frames); write those, or pass --num-videos {n} (renames the protocol)")
        if t != horizon:
            raise VidbenchError(f"{self.path}: {_frames_problem(t, horizon, context, a, first_context)}")
        if s != num_samples:
            layout = "[N,T,H,W,C]" if num_samples == 1 else f"[N,{num_samples},T,H,W,C]"
            raise VidbenchError(f"{self.path}: {s} sample(s) per video, the protocol takes {num_samples} ({layout}); "
                                f"pass --num-samples {s} (renames the protocol) or write {num_samples}")
        self.frames = a
        self.identity = {"name": self.path.stem, "config": {}, "source": "predictions",
                         "predictions_file": self.path.name, "predictions_sha256": sha256_file(self.path)}
        self.name = self.path.name

    def predictions(self, videos: list[int], context, horizon: int, num_samples: int, seed: int) -> np.ndarray:
        return np.array(self.frames[videos[0] : videos[-1] + 1])  # a writable copy


def _frames_problem(t: int, horizon: int, context: int | None, a: np.ndarray, first_context) -> str:
    """Why T frames per video are not the protocol's `horizon` predicted frames, with the fix: a file that
    includes the context (its first frames are the test video's own), or --horizon counted the other way."""
    said = f"{t} frames per video, the protocol predicts {horizon}"
    if context is None:
        return f"{said}; the file holds the predicted frames only"
    span = f"frames {context + 1}-{context + horizon}, after the {context} context frames"
    if t == context + horizon and first_context is not None and np.array_equal(a[0, 0, :context], first_context()):
        return (f"{said} ({span}): its first {context} frames are the test video's context frames, so the file "
                f"includes them; write only the predicted frames, e.g. np.save(path, preds[:, {context}:])")
    fix = (f"if the file holds {t} predicted frames, pass --horizon {context + t} (--horizon counts from the first "
           f"frame: {context} context + {t} predicted)")
    if t > horizon:
        fix += f", or keep the first {horizon}: preds[:, :{horizon}]"
    return f"{said} ({span}); {fix}"


def _dtype_problem(a: np.ndarray) -> str:
    """Why a non-uint8 array is refused, with NaN/inf located (float input is the usual mistake)."""
    if a.dtype.kind == "f":
        finite = np.isfinite(a.reshape(a.shape[0], a.shape[1], a.shape[2], -1)).all(-1)
        if not finite.all():
            n, s, t = (int(i) for i in np.argwhere(~finite)[0])
            return f"NaN/inf in video {n} (sample {s}) frame {t}; predictions must be uint8 in 0-255"
        return (f"predictions must be uint8 in 0-255, got {a.dtype} with values in [{float(a.min()):g}, "
                f"{float(a.max()):g}]; convert with (x * 255).round().astype(np.uint8) for frames in [0, 1]")
    return f"predictions must be uint8 in 0-255, got {a.dtype}"


def _open_array(path: Path) -> np.ndarray:
    try:
        if path.suffix == ".npy":
            return np.load(path, mmap_mode="r")
        if path.suffix == ".npz":
            return _npz_member(path)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise VidbenchError(f"{path}: cannot read predictions ({e})") from e
    raise VidbenchError(f"{path}: predictions must be a .npy or .npz file")


def _npz_member(path: Path) -> np.ndarray:
    """The one array of an .npz (or the one named 'predictions'); memory-mapped when stored uncompressed."""
    with zipfile.ZipFile(path) as z:
        names = [n[:-4] for n in z.namelist() if n.endswith(".npy")]
        if len(names) != 1 and "predictions" not in names:
            raise VidbenchError(f"{path}: holds {names}; name the array 'predictions' or store only one")
        name = names[0] if len(names) == 1 else "predictions"
        info = z.getinfo(name + ".npy")
        if info.compress_type == zipfile.ZIP_STORED:
            with open(path, "rb") as f:
                f.seek(info.header_offset + 26)
                name_len, extra_len = np.frombuffer(f.read(4), dtype="<u2")
                start = info.header_offset + 30 + int(name_len) + int(extra_len)
                f.seek(start)
                version = np.lib.format.read_magic(f)
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, fortran, dtype = read_header(f)
                offset = f.tell()
            return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")
    with np.load(path) as data:
        return data[name]
