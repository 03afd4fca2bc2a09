"""Paired comparisons of results files: is a difference between two models real?

Two results of the same protocol score the same test videos, so their per-video numbers pair up: a t interval
on the per-video differences (evaluate/intervals.py says why t, not the percentile bootstrap vidbench used
before: at 16 videos that covered 0.88-0.93) is much tighter, and honest, where two independent CIs overlap.
Where a model has several training seeds, the interval adds each model's seed-to-seed spread
(seed_pooled_interval; resampling 2-5 seeds with replacement under-covered, issue 24), and the row's note
says what it covers (seed_note).

    check_comparable(results)              -> None, or VidbenchError with one line naming what differs
    metric_exclusions(results, metrics)    -> {metric: reason} for metrics scored differently (left out)
    seed_groups(results)                   -> {model label: [Result per seed]} (label without "-seed<N>")
    paired_interval(a, b, level)           -> (mean difference a - b, low, high); a, b: [V] or [seeds, V]
    seed_pooled_interval(a, b), seed_note(seeds, labels): the several-seeds interval and its label
    compare(results, ...)                  -> list[Comparison]: every model against the first, per metric
    fvd_features(result)                   -> (prefixes, real [V,P,D], fake [V,S,P,D]) or None
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from vidbench.errors import VidbenchError
from vidbench.evaluate.intervals import mean_interval
from vidbench.evaluate.results import Result

SEED_SUFFIX = re.compile(r"^(?P<base>.+?)[-_]seed(?P<seed>\d+)$")
FEATURES_SUFFIX = ".fvd.npz"  # beside the results file: per-video I3D features (evaluate/fvd_features.py)


# ------------------------------------------------------------------------------------------ comparability
def _protocol(r: Result) -> dict:
    p = r.raw.get("protocol")
    return p if isinstance(p, dict) else {"name": r.protocol}


def _differs(what: str, values: dict[str, object]) -> str:
    shown = ", ".join(f"{name}: {value}" for name, value in values.items())
    return f"not comparable: {what} differ ({shown})"


def check_comparable(results: list[Result]) -> None:
    """Same protocol (every field), same test videos (data checksum and count) and the same file-wide
    conventions: what every metric rests on. Raises with one line saying what differs. What decides a single
    metric (raw or uint8 frames, its weight file) is checked per metric by metric_exclusions."""
    if len(results) < 2:
        raise VidbenchError("compare needs at least two results files")
    names = {r.path.name: r for r in results}

    def field(get):
        return {name: get(r) for name, r in names.items()}

    checks = [
        ("protocols", field(lambda r: r.protocol)),
        ("protocol fields", field(lambda r: sorted((k, str(v)) for k, v in _protocol(r).items()))),
        ("test videos (test_data_sha256)", field(lambda r: (r.raw.get("dataset") or {}).get("test_data_sha256"))),
        ("numbers of scored videos", field(_video_count)),
        ("conventions", field(lambda r: sorted((k, v) for k, v in (r.raw.get("conventions") or {}).items()
                                               if k not in PER_METRIC_CONVENTIONS))),
    ]
    for what, values in checks:
        if len({repr(v) for v in values.values()}) > 1:
            if what == "protocol fields":
                first, *_ = results
                diff = sorted(k for r in results for k, v in _protocol(r).items() if _protocol(first).get(k) != v)
                values = {n: ", ".join(f"{k}={_protocol(r).get(k)}" for k in diff) for n, r in names.items()}
            elif what == "conventions":
                values = {n: "; ".join(f"{k}={v}" for k, v in v_) for n, v_ in values.items()}
            raise VidbenchError(_differs(what, values))


# Conventions that decide one metric, not the whole file: which metrics scored raw decoder floats (the
# *_cwvae conventions on a CW-VAE run in-process) and which samples FVD pooled.
PER_METRIC_CONVENTIONS = ("raw_frames", "fvd_samples")


def scored_as(r: Result, metric: str) -> dict[str, object]:
    """What decides how `metric` ("ssim", "psnr_cwvae", "fvd@16") was scored in `r`: the frames it read (raw
    decoder floats or the uint8 predictions), FVD's samples, and its pretrained weight file."""
    base = metric.split("@")[0]
    conventions = r.raw.get("conventions") or {}
    how: dict[str, object] = {"frames": "raw decoder floats" if base in (conventions.get("raw_frames") or [])
                              else "uint8"}
    if base == "fvd":
        how["fvd samples"] = conventions.get("fvd_samples")
    weights = (r.raw.get("metric_weights") or {}).get(base)
    if weights:
        how["weights"] = weights.get("git_blob_sha1") or weights.get("file") if isinstance(weights, dict) else weights
    return how


def metric_exclusions(results: list[Result], metrics) -> dict[str, str]:
    """{metric: why it is left out} for the metrics these files scored differently (e.g. `ssim_cwvae` on raw
    decoder floats in one file and on uint8 frames in another); every other metric compares."""
    out = {}
    for metric in metrics:
        scored = {r.path.name: scored_as(r, metric) for r in results}
        kinds = {k for how in scored.values() for k in how}
        differ = [k for k in sorted(kinds) if len({repr(how.get(k)) for how in scored.values()}) > 1]
        if differ:
            shown = ", ".join(f"{name}: {'; '.join(f'{k} {how.get(k)}' for k in differ)}" for name, how in scored.items())
            out[metric] = f"{metric} left out: scored differently ({shown})"
    return out


def _video_count(r: Result):
    lengths = {len(v) for v in (r.raw.get("per_video") or {}).values()}
    return sorted(lengths) or r.num_videos


# ------------------------------------------------------------------------------------------------- seeds
def seed_of(r: Result) -> tuple[str, int | None]:
    """(model label without its seed, training seed): from the results' model identity ("train_seed"), or a
    run name ending in -seed<N> / _seed<N>; None when the file names no seed."""
    model = r.raw.get("model") if isinstance(r.raw.get("model"), dict) else {}
    seed = model.get("train_seed")
    match = SEED_SUFFIX.match(r.model)
    if match:
        return match["base"], int(seed if seed is not None else match["seed"])
    return r.model, None if seed is None else int(seed)


def seed_groups(results: list[Result]) -> dict[str, list[Result]]:
    groups: dict[str, list[Result]] = {}
    for r in results:
        groups.setdefault(seed_of(r)[0], []).append(r)
    return groups


# ----------------------------------------------------------------------------------------------- intervals
def _as_seeds(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x[None] if x.ndim == 1 else x


def paired_interval(a, b, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of a minus mean of b over the same V videos in the same order. a: [V] or [seeds_a, V], b likewise.
    One seed each: the t interval of the per-video differences (intervals.mean_interval). Several seeds on
    either side: seed_pooled_interval, which adds each model's seed spread (with one seed each it is the same
    t interval)."""
    a, b = _as_seeds(a), _as_seeds(b)
    if a.shape[1] != b.shape[1]:
        raise VidbenchError(f"a paired interval needs the same videos: {a.shape[1]} vs {b.shape[1]} per-video values")
    if len(a) > 1 or len(b) > 1:
        return seed_pooled_interval(a, b, level)
    differences = a[0] - b[0]
    low, high = mean_interval(differences, level)
    return float(differences.mean()), low, high


def seed_pooled_interval(a, b, level: float = 0.95) -> tuple[float, float, float]:
    """Difference of the models' means over seeds and videos, with a t interval whose variance adds the test
    videos' part (per-video paired differences of the seed-averaged values) and each model's seed part (the
    spread of its per-seed means / its seed count), degrees of freedom by Welch-Satterthwaite. With 2 seeds a
    model's seed spread has 1 degree of freedom, so the interval is wide (t of 1-2 df): that width is what 2
    seeds can say. A model with one seed adds no seed part (its spread is not estimable): seed_note says so."""
    a, b = _as_seeds(a), _as_seeds(b)
    per_video = a.mean(axis=0) - b.mean(axis=0)
    parts = [(per_video.var(ddof=1) / len(per_video), len(per_video) - 1)]
    parts += [(x.mean(axis=1).var(ddof=1) / len(x), len(x) - 1) for x in (a, b) if len(x) > 1]
    var = sum(c for c, _ in parts)
    dof = var ** 2 / sum(c ** 2 / df for c, df in parts) if var > 0 else len(per_video) - 1
    half = float(stats.t.ppf(0.5 + level / 2, dof) * np.sqrt(var))
    diff = float(per_video.mean())
    return diff, diff - half, diff + half


def seed_note(seeds: tuple[int, int], labels: tuple[str, str]) -> str:
    """What a paired interval covers, given each model's number of seeds: "" for one seed each (test videos:
    the comparison of these two trained models)."""
    if max(seeds) == 1:
        return ""
    single = [label for n, label in zip(seeds, labels) if n == 1]
    if single:
        return (f"test videos and the seed spread of the pooled model only; seed spread not estimable from "
                f"1 seed of {', '.join(single)}")
    return f"test videos and training seeds ({seeds[0]} and {seeds[1]} seeds, t interval)"


# ------------------------------------------------------------------------------------------------ features
def features_path(r: Result) -> Path:
    name = r.raw.get("fvd_features_file")
    return r.path.parent / name if name else r.path.with_suffix(FEATURES_SUFFIX)


def fvd_features(r: Result):
    """Per-video I3D features stored beside a results file: (prefixes, real [V,P,D], fake [V,S,P,D]), or None."""
    path = features_path(r)
    if not path.is_file():
        return None
    with np.load(path) as data:
        return [int(p) for p in data["prefixes"]], data["real"], data["fake"]


# -------------------------------------------------------------------------------------------------- compare
@dataclass
class Comparison:
    metric: str
    model: str               # compared with the baseline: difference = model - baseline
    baseline: str
    model_value: float
    baseline_value: float
    difference: float
    low: float
    high: float
    higher_is_better: bool
    seeds: tuple[int, int]   # seeds of (model, baseline)
    note: str = ""           # what the interval covers where that is not plain, or why there is none

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0

    @property
    def verdict(self) -> str:
        if np.isnan(self.low):
            return "no verdict (see note)"
        if not self.significant:
            return "no significant difference"
        better = (self.difference > 0) == self.higher_is_better
        return f"{self.model if better else self.baseline} better"


def _per_video(group: list[Result], metric: str) -> np.ndarray | None:
    rows = [r.raw.get("per_video", {}).get(metric) for r in group]
    return None if any(v is None for v in rows) else np.asarray(rows, dtype=np.float64)


def compare(results: list[Result], level: float = 0.95) -> list[Comparison]:
    """Every model (seed group) against the first one given, per metric both have per-video values for and
    every file scored the same way (metric_exclusions: the others are left out), plus FVD and KVD of the
    longest prefix where both have stored features (one evaluation each)."""
    check_comparable(results)
    excluded = metric_exclusions(results, {m for r in results for m in (r.raw.get("per_video") or {})} | {"fvd"})
    groups = seed_groups(results)
    if len(groups) < 2:
        raise VidbenchError(f"compare: every file is a seed of {next(iter(groups))}; give at least two models")
    (base_label, base), *others = groups.items()
    hib = {**(base[0].raw.get("higher_is_better") or {}), "fvd": False}
    out = []
    for label, group in others:
        for metric in base[0].raw.get("per_video", {}):
            a, b = _per_video(group, metric), _per_video(base, metric)
            if a is None or b is None or metric in excluded:
                continue
            diff, low, high = paired_interval(a, b, level)
            out.append(Comparison(metric, label, base_label, float(a.mean()), float(b.mean()), diff, low, high,
                                  bool(hib.get(metric, True)), (len(a), len(b)),
                                  seed_note((len(a), len(b)), (label, base_label)) or _one_video(a)))
        if "fvd" not in excluded:  # KVD is computed from the same I3D features, so it shares FVD's comparability
            out += _distance_comparisons(group, base, label, base_label, level)
    if not out and excluded:
        raise VidbenchError("compare: no metric is scored the same way in these files: " + "; ".join(excluded.values()))
    if not out:
        raise VidbenchError("compare: these results files hold no per-video numbers (written before vidbench "
                            "recorded them?); re-run `vidbench evaluate` (cached batches make it quick)")
    return out


def _one_video(per_video: np.ndarray) -> str:
    return "one test video: no interval (a spread needs two)" if per_video.shape[-1] < 2 else ""


def _distance_comparisons(group, base, label, base_label, level) -> list[Comparison]:
    """FVD and KVD of the longest prefix on the same videos, paired (metrics/fvd_stats.py, metrics/kvd.py).
    FVD has no interval under fvd_stats.POPULATION_MIN_RATIO x dim videos: the row says why."""
    from vidbench.metrics.fvd_stats import frechet_from_features, paired_fvd_difference
    from vidbench.metrics.kvd import mmd2_over_videos, paired_kvd_difference

    if len(group) != 1 or len(base) != 1:
        return []  # several seeds: FVD is a statistic of one evaluation's set; not paired across seeds here
    fa, fb = fvd_features(group[0]), fvd_features(base[0])
    if fa is None or fb is None or fa[0] != fb[0]:
        return []
    last = len(fa[0]) - 1
    real = fb[1][:, last]  # same videos and weights (check_comparable), so either file's real features
    fake_a, fake_b = fa[2][:, :, last], fb[2][:, :, last]
    dim = real.shape[-1]
    out = []
    for name, paired, value in (
            ("fvd", paired_fvd_difference, lambda f: frechet_from_features(real, f.reshape(-1, dim))),
            ("kvd", paired_kvd_difference, lambda f: mmd2_over_videos(real, f))):
        d = paired(real, fake_a, fake_b, level)
        low, high = (np.nan, np.nan) if d.low is None else (d.low, d.high)
        out.append(Comparison(f"{name}@{fa[0][last]}", label, base_label, value(fake_a), value(fake_b), d.value,
                              low, high, False, (1, 1), d.reason or f"covers {d.covers}"))
    return out
