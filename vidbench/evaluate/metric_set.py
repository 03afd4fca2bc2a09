"""Which metrics a run computes: names checked against the registry, their outputs and directions, and the
built metric objects (frame callables, LPIPS, the readout, I3D), with unavailable ones recorded."""

from __future__ import annotations

import functools

from vidbench.errors import VidbenchError
from vidbench.registry import METRICS

# Metrics added to a protocol's own when the user names none, where the test videos support them: on Moving
# MNIST the digit readout (does the prediction keep the digits?), which SSIM and PSNR reward blur for missing.
# Not a protocol field, so published protocols and their results files stay as they are.
DEFAULT_EXTRA = {"mmnist": ("readout",)}


def resolve_metrics(protocol, metrics=None, split=None) -> list[str]:
    import vidbench.metrics  # noqa: F401  (fills the registry)

    names = list(protocol.metrics) if metrics is None else list(metrics)
    if metrics is None and split is not None:
        names += [m for m in DEFAULT_EXTRA.get(protocol.dataset, ()) if m not in names and _has_metadata(m, split)]
    for name in names:
        METRICS.info(name)  # unknown name -> "did you mean"
    key = protocol.reduce[5:]
    if protocol.reduce.startswith("best:") and not any(key in metric_outputs(n) for n in names):
        raise VidbenchError(f"protocol {protocol.name} keeps the best sample by {key}; add it to --metrics")
    return names


def metric_outputs(name: str) -> tuple[str, ...]:
    """The values a metric yields, each scored and summarised on its own: its name, or the registry's
    `outputs` (readout: readout_accuracy and readout_position_error)."""
    return tuple(METRICS.info(name).get("outputs", (name,)))


def higher_is_better(name: str) -> dict[str, bool]:
    """Direction of each output of a metric. The registry gives one bool, or a dict per output where they
    differ (readout: accuracy up, position error down), so best-of-N never picks the worst sample."""
    better = METRICS.info(name).get("higher_is_better", name not in ("lpips", "fvd", "kvd"))
    return {out: bool(better[out] if isinstance(better, dict) else better) for out in metric_outputs(name)}


class MetricSet:
    """The metrics this run computes: per-frame callables (pred, target) [N,C,H,W] -> [N]; metadata metrics
    (predictions uint8 [V,S,T,H,W,C], split, videos, context) -> {output: [V,S,T]}, which read each test
    video's recorded metadata (readout: digit positions and labels); and I3D for FVD.
    A metric whose weights are missing, or whose metadata the test split lacks, stops the run, or with
    skip_unavailable is recorded with the reason."""

    def __init__(self, names, device, weights_dir=None, skip_unavailable=False, split=None):
        self.device = device
        self.frame: dict = {}
        self.metadata: dict = {}
        self.i3d = None
        self.gt_features = None  # evaluate/feature_cache.GroundTruthFeatures, set by the engine with I3D
        self.unavailable: dict[str, str] = {}
        self.weights: dict[str, dict] = {}  # which weight file each network metric used (results + fingerprint)
        for name in names:
            try:
                kind = METRICS.info(name).get("kind", "frame")
                if kind == "frame":
                    self.frame[name] = METRICS.get(name)
                elif kind == "network":  # built once, then called like a frame metric (LPIPS)
                    self.frame[name] = METRICS.get(name)(weights_dir=weights_dir, device=device)
                    self.weights[name] = self.frame[name].weights
                elif kind == "metadata":
                    _check_metadata(name, split)
                    self.metadata[name] = functools.partial(METRICS.get(name), device=device)
                elif kind == "fvd_features":  # KVD: from FVD's features, added by evaluate/fvd_features.py
                    if "fvd" not in names:
                        raise VidbenchError(f"metric {name} is computed from FVD's I3D features: add fvd to --metrics")
                elif name == "fvd":
                    from vidbench.metrics.fvd import I3DFeatures

                    self.i3d = I3DFeatures(device=device, weights_dir=weights_dir)
                    self.weights[name] = self.i3d.weights
                else:
                    raise VidbenchError(f"metric {name!r} ({kind}) is not computed by `vidbench evaluate`")
            except VidbenchError as e:
                from vidbench.metrics.weights import MetricUnavailable

                if not isinstance(e, MetricUnavailable):
                    raise
                if not skip_unavailable:
                    raise VidbenchError(f"{e} (or pass --skip-unavailable to record {name} as unavailable)") from e
                self.unavailable[name] = str(e)
        # Per-frame values in the order asked for; each output is scored like a frame metric.
        self.per_frame = [out for name in names if name in self.frame or name in self.metadata
                          for out in metric_outputs(name)]
        self.higher_is_better = {out: better for name in names for out, better in higher_is_better(name).items()}
        # Chance level per output where the registry states one (readout): the leaderboard prints it.
        self.chance = {out: float(v) for name in names if name in self.metadata or name in self.frame
                       for out, v in METRICS.info(name).get("chance", {}).items()}
        # ... and, beside it, the levels a gaming prediction reaches (readout: hedging, blobs), where stated.
        self.gamed = {what: levels for name in names if name in self.metadata or name in self.frame
                      for what, levels in METRICS.info(name).get("gamed", {}).items()}


def _has_metadata(name: str, split) -> bool:
    from vidbench.metrics.weights import MetricUnavailable

    try:
        _check_metadata(name, split)
        return True
    except MetricUnavailable:
        return False


def _check_metadata(name: str, split) -> None:
    """A metadata metric needs the registry's `needs_metadata` keys in the test videos' metadata (readout:
    positions and labels, which only a Moving MNIST generated by vidbench records; the authors' mp4 archive
    has none). Checked on the first video before anything is predicted."""
    from vidbench.metrics.weights import MetricUnavailable

    needs = tuple(METRICS.info(name).get("needs_metadata", ()))
    meta = split.metadata(0) if split is not None and len(split) else {}
    lacking = [k for k in needs if k not in meta]
    if lacking:
        source = (split.manifest.get("source") or {}).get("kind", "unknown")
        raise MetricUnavailable(f"metric {name} needs {' and '.join(lacking)} in each test video's metadata; "
                                f"{split.root} ({split.dataset}, source: {source}) has none")
