"""Named, versioned evaluation protocols: everything that changes a number, frozen under one name.

A results file names its protocol; the leaderboard compares only results of the same protocol. Changing
any field of a published protocol means a new version (mmnist@2), never an edit of mmnist@1.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field

from vidbench.errors import VidbenchError
from vidbench.registry import PROTOCOLS

# What `vidbench evaluate --predictions` takes (README "Your model", --help; sources.PredictionsFile checks it).
PREDICTIONS_FORMAT = ("a .npy (or an .npz of one array, or of one named 'predictions') of uint8 0-255 "
                      "[N,T,H,W,C], or [N,S,T,H,W,C] for S samples per video: N = the protocol's test videos in "
                      "order, T = the predicted frames only (no context frames)")


def doubling_prefixes(horizon: int, start: int = 16) -> tuple[int, ...]:
    """16, 32, 64 ... and the full horizon: the growing sub-sequences of the paper's FVD curves.
    Each is at least 16 frames: I3D takes no clip under 9 (vidbench.metrics.fvd.MIN_FRAMES)."""
    lengths, n = [], start
    while n < horizon:
        lengths.append(n)
        n *= 2
    return tuple(lengths + [horizon])


@dataclass(frozen=True)
class Protocol:
    name: str                      # "mmnist@1"
    dataset: str                   # prepared dataset it reads (its test split)
    context: int                   # ground-truth frames given to the model
    horizon: int                   # frames predicted open-loop after the context
    num_videos: int                # the first N test videos in file order (see below: not the authors' TFDS order)
    num_samples: int = 1           # samples per video
    reduce: str = "mean"           # "mean" over samples, "best:<metric>" (one best sample by mean-over-time metric,
    #                                every metric read from it) or "best-per-metric" (the authors' eval: each metric
    #                                from its own best sample); vidbench.evaluate.accumulate.reduce_samples
    metrics: tuple[str, ...] = ("ssim", "ssim_cwvae", "psnr", "psnr_cwvae", "lpips", "fvd")
    fvd_prefixes: tuple[int, ...] = ()
    fvd_include_context: bool = False   # TECO-style pasting of the ground-truth context into both sets
    note: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.fvd_prefixes:
            object.__setattr__(self, "fvd_prefixes", doubling_prefixes(self.horizon))

    @property
    def length(self) -> int:
        return self.context + self.horizon

    def to_dict(self) -> dict:
        return asdict(self)


def register(protocol: Protocol) -> Protocol:
    PROTOCOLS.add(protocol.name, protocol, dataset=protocol.dataset)
    return protocol


# The authors' eval: 36 context frames (one step of the top level), the first 100 test videos, 1 sample.
# "First 100" in the authors' eval means TFDS's order: tfds.load(shuffle_files=False) reads the records in the
# order its builder wrote them, which follows TFDS's hashing of the example keys (file paths), not the file
# names. vidbench cannot reproduce that order without TFDS; it takes the first 100 in file (name) order.
register(Protocol("mmnist@1", "mmnist", 36, 964, 100, note="authors' eval: 1000-frame test videos"))
register(Protocol("minerl@1", "minerl", 36, 464, 100, note="authors' eval: 500-frame test videos"))
register(Protocol("mazes@1", "mazes", 36, 264, 100, note="authors' eval: 300-frame test videos"))
register(Protocol("kth@1", "kth", 36, 64, 100, note="no KTH eval from the authors: 36+64 = 100 frames (4 s at 25 fps), svg person split; see kth.py"))  # why: vidbench/data/kth.py docstring
# A short protocol for the offline demo and smoke tests: never comparable to the paper's numbers.
register(Protocol("mmnist-short@1", "mmnist", 36, 64, 16, note="demo/smoke protocol, not the paper's"))

# Other papers' protocols (cards with sources in protocol_cards.py): Flexible Diffusion Models re-ran CW-VAE
# on MineRL and GQN Mazes with one FVD over the whole video, the 36 ground-truth context frames included.
for _dataset, _horizon in (("minerl", 464), ("mazes", 264)):
    register(Protocol(f"fdm-{_dataset}@1", _dataset, 36, _horizon, 100, metrics=("fvd",), fvd_prefixes=(_horizon,),
                      fvd_include_context=True,
                      note=f"Flexible Diffusion Models' FVD: whole {36 + _horizon}-frame video, context pasted in"))


def get_protocol(name: str) -> Protocol:
    return PROTOCOLS.get(name)


def default_protocol(dataset: str) -> Protocol:
    return get_protocol(f"{dataset}@1")


def resolve_protocol(dataset: str, protocol=None, horizon=None, num_videos=None, num_samples=None, reduce=None,
                     last_frame=None):
    """The named protocol (default `<dataset>@1`); overrides make a new name that says what changed,
    so a modified protocol is never compared with the published one.

    horizon: frames predicted after the context (predict()'s horizon). last_frame: the paper's way of
    counting, frames from the first one ("500 frames" on MineRL = 36 context + 464 predicted), so
    last_frame=500 on minerl is minerl@1 itself."""
    p = protocol if isinstance(protocol, Protocol) else (get_protocol(protocol) if protocol else default_protocol(dataset))
    if p.dataset != dataset:
        raise VidbenchError(f"protocol {p.name} is for dataset {p.dataset!r}; the test videos given are {dataset!r}")
    if last_frame is not None:
        if horizon is not None:
            raise VidbenchError("give the number of predicted frames or the last frame, not both")
        if last_frame <= p.context:
            raise VidbenchError(f"--horizon {last_frame}: counts frames from the first, so it must exceed the "
                                f"{p.context} context frames of {p.name}")
        horizon = last_frame - p.context
    changes = {k: v for k, v in (("horizon", horizon), ("num_videos", num_videos), ("num_samples", num_samples),
                                  ("reduce", reduce))
               if v is not None and v != getattr(p, k)}
    if "reduce" in changes and not (changes["reduce"] in ("mean", "best-per-metric")
                                    or changes["reduce"].startswith("best:")):
        raise VidbenchError(f"--reduce {changes['reduce']!r}: use mean, best:<metric> or best-per-metric")
    for key, value in changes.items():
        if key != "reduce" and value < 1:
            raise VidbenchError(f"--{key.replace('_', '-')} must be at least 1, got {value}")
    if not changes:
        return p
    label = ",".join(f"{k}={v}" for k, v in changes.items())
    prefixes = () if "horizon" in changes else p.fvd_prefixes  # recomputed for the new horizon
    return dataclasses.replace(p, name=f"{p.name}[{label}]", fvd_prefixes=prefixes, **changes)


def check_split_size(split, protocol: Protocol, named: bool) -> None:
    """The test split holds the protocol's videos; when it does not, say which protocol was used and why
    (a defaulted `<dataset>@1` on a small dataset is the usual cause) and how to pick another."""
    if protocol.num_videos <= len(split):
        return
    how = "" if named else f"; --protocol defaulted to {protocol.name}"
    smaller = [p.name for p in (PROTOCOLS.get(n) for n in PROTOCOLS.names())
               if p.dataset == protocol.dataset and p.num_videos <= len(split)]
    pick = f"pick another with --protocol ({', '.join(smaller)}; see `vidbench ls protocols`)" if smaller else \
        "see `vidbench ls protocols`"
    raise VidbenchError(f"{split.root}: asked for {protocol.num_videos} {split.split} videos ({protocol.name}{how}), "
                        f"the split has {len(split)}; {pick}, or pass --num-videos {len(split)} (renames the protocol)")
