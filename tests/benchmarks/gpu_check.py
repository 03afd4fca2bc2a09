"""GPU readiness in one script (`nox -s gpu`; budget: 8 minutes on one GPU). Prints, in order:

1. the CUDA-marked tests (tests/test_cuda.py: CPU vs CUDA loss and gradients on a fixed batch, the bf16,
   compiled and channels-last paths, CUDA-graph replay against the eager step);
2. CW-VAE mmnist preset at batch 50 x 100: steps/s and peak GPU memory in bf16 + compile with the step
   replayed as a CUDA graph (--cuda-graphs: the paper-run mode), fp32, bf16 + graphs, and bf16 + graphs with
   the recurrence's backward through autograd instead of the hand-written one (other modes with --modes, e.g.
   bf16+graphs+nchw+notune for the layout and autotuning the training step picks by default); each mode in
   its own process with its own time limit, so a slow compile cannot eat the budget; the warm-up (compile or
   capture) is printed apart. The compiling mode starts before the tests and compiles while they run (its
   compile is minutes of CPU work, the tests mostly GPU work); its timed steps wait for the tests to end, and
   every mode's steps are timed with the GPU to themselves. `--profile MODE` prints where one eager step's GPU
   time goes, by kernel kind;
3. I3D frames/s (random weights: the network's speed only, labelled so);
4. the projected wall time of the paper's mmnist run on this GPU: 300 epochs of the authors' step count,
   every non-overlapping 100-frame chunk of the 20,000 training videos (100 frames each) per epoch at
   batch 50 = 400 steps per epoch, 120,000 steps (paper: 2.5 days on a Titan Xp; goal: < 1 h on an H100);
5. loader throughput (windows/s from a memory-mapped store with the default 2 workers, pinned memory)
   against what the fastest mode consumes (steps/s x 50).

Last measured (2026-11-26), three machines:
- one H100 80GB HBM3, torch 2.11.0+cu130, session 7 (the code of 091d138: hand-written backward through time,
  fp32 recurrence under bf16, channels-last and autotuning by default; 8-10 s per mode; the script then ran
  the tests first and every mode after them): **bf16 + compile + graphs 33.87 steps/s (1,694 windows/s, peak
  4.7 GiB) -> paper run 0.98 h: the goal (< 1 h on one H100) met**. Its warm-up (compile + capture) ran over
  the then 270 s limit on the fresh machine's cold caches, and took 225 s when rerun alone (`--mode`) on the
  same machine, whose caches the first attempt had partly filled: hence the 420 s limit now, and the compile
  overlapping the tests. bf16 + graphs 25.23 steps/s (1.32 h), with the recurrence's backward through autograd
  22.14 (1.51 h): the hand-written backward is 1.14x on the GPU. CUDA tests 13 of 14 then (162 s): compiled
  bf16 against eager bf16 gradients 1.5e-3 against a bound of 1e-3 meant for fp32 rounding, since set to the
  bf16 scale. I3D 7,558 frames/s. The loader section did not run (the call's own time limit); 4,000-5,400
  windows/s were measured before, ~2.4-3.2x what the paper-run mode consumes now.
- one H100 80GB HBM3, torch 2.11.0+cu130, session 4 (10 s per mode; before channels-last and autotuning were
  the CUDA defaults, so they are spelled out as parts here): bf16 + graphs 19.17 steps/s, + channels-last
  21.00 (1.10x), + cuDNN autotuning 22.64 (1.18x); bf16 + compile + graphs + both 30.63 steps/s (warm-up
  231 s, peak 5.1 GiB) -> paper run 1.09 h (goal < 1 h: 9% away). Eager bf16 step profiled (channels-last,
  autotuned): 41.1 ms of kernels, 9,278 kernels: matmuls 14.4 ms (3,420 kernels: the recurrence's small
  ones, ~4 us each), elementwise 11.5 ms (4,561), convolutions 9.3 ms (37), reductions 3.4, copies 2.4. The
  next lever is the number of kernels per recurrent step, not convolution speed. CUDA tests: the compile
  tests failed here on two bugs, both fixed after (the decoder's last layer is the native transposed conv on
  CUDA; torch.compile(dynamic=False)); I3D 7,631-7,695 frames/s; loader 4,302-5,393 windows/s (3.5x).
- one H100 80GB HBM3, torch 2.11.0+cu130 (modes timed 12 s each, two calls on fresh machines): all 14 CUDA
  tests pass (the bf16 CUDA-graph test's parameter bound set from the first call's 6.9e-4). Batch 50 x 100: fp32 4.73 steps/s, bf16 4.75, fp32 + CUDA graphs 9.32 (1.97x), bf16 + CUDA
  graphs 20.05 / 20.12 (4.24x), bf16 + compile + CUDA graphs 29.00 (6.1x; compile warm-up 189 s); peak 4.5 /
  2.8 / 4.7 / 3.0 / 2.5 GiB -> paper run 7.05 / 7.02 / 3.58 / 1.66 / 1.15 h (goal: < 1 h, not yet met). I3D
  7,670 frames/s; loader 4,000-5,060 windows/s with 2 workers, 3.5x what the fastest mode consumes. (Taken
  before CW-VAE's recurrence was kept in fp32 under --amp bf16: the bf16 modes now run fewer cast kernels.)
- one H200, torch 2.11.0+cu130 (before --cuda-graphs existed, 20 s per mode): fp32 5.72 steps/s, bf16 5.59,
  bf16 + compile 10.58 (warm-up 209 s) -> 5.8 / 6.0 / 3.2 h. At batch 200, eager bf16 gave 1,163 windows/s,
  3.1x its 379 at batch 50: the eager step is launch-bound, which is what the CUDA graphs remove.

    python tests/benchmarks/gpu_check.py            # or: python3 -m nox -s gpu
    python tests/benchmarks/gpu_check.py --mode bf16 --seconds 20   # one mode (used by the script itself)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BATCH, FRAMES = 50, 100
EPOCHS, TRAIN_VIDEOS, VIDEO_FRAMES = 300, 20_000, 100
PAPER_STEPS = EPOCHS * (TRAIN_VIDEOS * (VIDEO_FRAMES // FRAMES) // BATCH)  # 120,000
# A mode is "+"-joined parts: fp32 or bf16, then any of compile, graphs (--cuda-graphs), and switches away
# from the training defaults (train/step.py: on CUDA, channels-last under autocast and cuDNN autotuning
# always): cl (channels-last in fp32 too), nchw (the default layout under bf16), notune (no cuDNN autotuning),
# autograd (the posterior recurrence through autograd, not rssm_bptt.py's hand-written backward through time).
PARTS = {"fp32": {}, "bf16": {"amp": "bf16"}, "compile": {"compile": True}, "graphs": {"cuda_graphs": True},
         "cl": {"channels_last": True}, "nchw": {"channels_last": False}, "notune": {}, "autograd": {}}
# Defaults: the paper-run mode (compiled while the tests run), fp32 as the base of the speed-ups, and the
# hand-written backward through time against autograd under CUDA graphs (25.23 vs 22.14 steps/s on an H100).
# Others by --modes: bf16 and fp32+graphs were measured at 4.75 and 9.32 steps/s; a second compile (bf16+compile)
# would not fit the 8-minute budget.
DEFAULT_MODES = ("bf16+compile+graphs", "fp32", "bf16+graphs", "bf16+graphs+autograd")


def mode_options(name: str) -> dict:
    parts = name.split("+")
    if parts[0] not in ("fp32", "bf16") or not set(parts) <= set(PARTS) or len(set(parts)) != len(parts) \
            or {"cl", "nchw"} <= set(parts):
        raise SystemExit(f"gpu_check: mode {name!r}: fp32 or bf16, then any of {', '.join(list(PARTS)[2:])}")
    options = {}
    for part in parts:
        options.update(PARTS[part])
    return options


def apply_switches(name: str) -> None:
    """The parts that are process-wide settings rather than step options (set after step_function)."""
    import torch

    from vidbench.models.cwvae import RSSMCell

    parts = name.split("+")
    torch.backends.cudnn.benchmark = "notune" not in parts  # the step turned it on
    RSSMCell.hand_written_backward = "autograd" not in parts


def mode_limit(name: str) -> float:
    """Seconds a mode's process may take besides its timed steps: the mmnist step's compile took 189-231 s,
    and over 270 s on a fresh machine's cold caches (2026-11-26, while nothing else ran); a capture is 3 steps."""
    return 420 if "compile" in name.split("+") else 60


def run_mode(name: str, seconds: float, after: Path | None = None) -> dict:
    """Time one mode in this process: 2 warm-up steps (compile happens there), then steps for `seconds`; with
    `after`, the timed steps wait until that file exists (the GPU is then this process's alone)."""
    import torch

    from vidbench.models import create_model
    from vidbench.train import step_function

    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # fp32 means fp32
    torch.manual_seed(0)
    model = create_model("cwvae", "mmnist").cuda().train()
    step = step_function(model, **mode_options(name))
    apply_switches(name)
    video = torch.rand(BATCH, FRAMES, 1, 64, 64, device="cuda", generator=torch.Generator("cuda").manual_seed(0))
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(2):
        logs = step(video)
    torch.cuda.synchronize()
    warmup = time.perf_counter() - start
    while after is not None and not after.exists():
        time.sleep(0.1)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        logs = step(video)
        steps += 1
        if steps % 5 == 0:
            torch.cuda.synchronize()
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    return {"mode": name, "steps_per_s": steps / elapsed, "steps": steps, "warmup_s": warmup,
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30, "loss": float(logs["loss"])}


def kernel_kind(name: str) -> str:
    lowered = name.lower()
    for kind, marks in (("convolution", ("conv", "cudnn", "implicit", "dgrad", "wgrad", "fprop", "nchw", "nhwc")),
                        ("matmul", ("gemm", "nvjet", "cutlass", "cublas", "splitk")),
                        ("reduction", ("reduce",)), ("copy / layout", ("copy", "transpose", "cat"))):
        if any(mark in lowered for mark in marks):
            return kind
    return "elementwise / other"


def profile_mode(name: str, steps: int = 3) -> None:
    """Where the GPU time of one step goes (no graphs: the profiler sees each kernel of an eager step)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from vidbench.models import create_model
    from vidbench.train import step_function

    options = {k: v for k, v in mode_options(name).items() if k != "cuda_graphs"}
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    step = step_function(create_model("cwvae", "mmnist").cuda().train(), **options)
    apply_switches(name)
    video = torch.rand(BATCH, FRAMES, 1, 64, 64, device="cuda")
    for _ in range(3):
        step(video)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step(video)
        torch.cuda.synchronize()
    kinds: dict[str, list[float]] = {}
    for event in prof.key_averages():
        total = getattr(event, "device_time_total", None) or getattr(event, "cuda_time_total", 0)
        if total and event.device_type == torch.autograd.DeviceType.CUDA:
            entry = kinds.setdefault(kernel_kind(event.key), [0.0, 0])
            entry[0] += total / steps / 1e3
            entry[1] += event.count / steps
    busy = sum(ms for ms, _ in kinds.values())
    if not busy:
        print(f"profile {name}: the profiler recorded no CUDA kernels", flush=True)
        return
    print(f"profile {name} (eager, no graphs): GPU kernels {busy:.1f} ms per step, "
          f"{sum(n for _, n in kinds.values()):.0f} kernels", flush=True)
    for kind, (ms, count) in sorted(kinds.items(), key=lambda kv: -kv[1][0]):
        print(f"  {kind:>20}: {ms:6.1f} ms ({ms / busy:4.0%})  {count:6.0f} kernels", flush=True)


def i3d_frames_per_second(seconds: float = 15.0) -> float:
    import torch

    from vidbench.metrics.fvd import I3DFeatures

    net = I3DFeatures.random_for_speed_test(device="cuda", frames_per_batch=256)
    video = torch.rand(16, 16, 3, 64, 64, device="cuda")  # 256 frames of 16-frame clips, as FVD feeds it
    net.features(video)
    torch.cuda.synchronize()
    frames, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        net.features(video)
        frames += video.shape[0] * video.shape[1]
    torch.cuda.synchronize()
    return frames / (time.perf_counter() - start)


def mode_command(name: str, seconds: float, after: Path | None) -> list[str]:
    return [sys.executable, __file__, "--mode", name, "--seconds", str(seconds),
            *(["--after", str(after)] if after else [])]


def measure_modes(modes: list[str], seconds: float, run_tests, env: dict, command=mode_command) -> tuple[dict, bool]:
    """Each mode in its own process with its own time limit, one at a time on the GPU, except that the first
    compiling mode starts before `run_tests`: its compile (minutes of CPU work on cold caches) overlaps the
    tests, its timed steps wait until they have ended, and it is the first mode measured after them. Prints
    each mode's figures as it ends; returns the results (in the order measured, failed ones left out) and
    whether the tests or any mode failed."""
    results, failed = {}, False
    with tempfile.TemporaryDirectory() as tmp:
        tests_done = Path(tmp) / "tests-done"

        def start(name: str, after: Path | None) -> tuple[subprocess.Popen, Path]:
            # Output to files, not pipes: a child filling a pipe nobody reads (during the tests) would stall.
            out = Path(tmp) / f"{len(started)}.out"
            with open(out, "w") as stdout, open(out.with_suffix(".err"), "w") as stderr:
                return subprocess.Popen(command(name, seconds, after), cwd=ROOT, env=env, text=True,
                                        stdout=stdout, stderr=stderr), out

        started: dict[str, tuple[subprocess.Popen, Path]] = {}
        try:
            early = next((name for name in modes if "compile" in name.split("+")), None)
            if early:
                started[early] = start(early, tests_done)
            try:
                failed = bool(run_tests())
            finally:
                tests_done.touch()
            print(f"\n== CW-VAE mmnist preset, batch {BATCH} x {FRAMES} frames, {seconds:.0f} s per mode"
                  + (f" ({early} compiled while the tests ran; every mode's steps timed alone)" if early else ""),
                  flush=True)
            # The compiling mode first: its timed steps begin as soon as the tests end, so no other may run then.
            for name in ([early] if early else []) + [name for name in modes if name != early]:
                limit = mode_limit(name) + seconds
                proc, out = started[name] if name in started else started.setdefault(name, start(name, None))
                try:
                    proc.wait(timeout=limit)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    print(f"{name:>19}: over its {limit:.0f} s limit (compile too slow?)", flush=True)
                    failed = True
                    continue
                lines = [line for line in out.read_text().splitlines() if line.startswith("{")]
                if proc.returncode or not lines:
                    print(f"{name:>19}: failed\n{out.with_suffix('.err').read_text()[-2000:]}", flush=True)
                    failed = True
                    continue
                r = results[name] = json.loads(lines[-1])
                print(f"{name:>19}: {r['steps_per_s']:6.2f} steps/s  {r['steps_per_s'] * BATCH:7.0f} windows/s  "
                      f"peak {r['peak_gib']:5.1f} GiB  warm-up {r['warmup_s']:5.1f} s  loss {r['loss']:.1f}  -> paper run "
                      f"({PAPER_STEPS:,} steps) {PAPER_STEPS / r['steps_per_s'] / 3600:5.2f} h", flush=True)
        finally:  # an interrupted run leaves no mode process behind (the compile one runs for minutes)
            for proc, _ in started.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    return results, failed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", help="time one mode in this process (what the script runs per mode)")
    parser.add_argument("--profile", metavar="MODE", help="CUDA kernel time per step of one mode without graphs, by kind")
    parser.add_argument("--after", type=Path, help=argparse.SUPPRESS)  # --mode's timed steps wait for this file
    parser.add_argument("--seconds", type=float, default=10.0)  # 4 modes, one compile: within 8 minutes
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--modes", default=",".join(DEFAULT_MODES),
                        help="comma-separated; a mode is fp32 or bf16 then any of +compile, +graphs, +cl, +nchw, "
                             "+notune, +autograd")
    args = parser.parse_args()
    for name in [args.mode, args.profile, *args.modes.split(",")]:
        if name:
            mode_options(name)  # a mistyped mode fails here, before any GPU time is spent
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU here; nothing to do", flush=True)
        return 1
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.seconds, args.after)), flush=True)
        return 0
    if args.profile:
        profile_mode(args.profile)
        return 0
    began = time.perf_counter()
    print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}", flush=True)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}

    def cuda_tests() -> bool:
        """The CUDA-marked tests; True if they failed."""
        if args.skip_tests:
            return False
        print("\n== CUDA-marked tests", flush=True)
        try:
            tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "cuda",
                                    str(ROOT / "tests" / "test_cuda.py")], cwd=ROOT, env=env, timeout=180)
            return tests.returncode != 0
        except subprocess.TimeoutExpired:
            print("CUDA tests: over their 180 s budget", flush=True)
            return True

    results, failed = measure_modes(args.modes.split(","), args.seconds, cuda_tests, env)
    if "fp32" in results:
        base = results["fp32"]["steps_per_s"]
        print("speed-up over fp32: " + ", ".join(f"{n} {r['steps_per_s'] / base:.2f}x" for n, r in results.items()))
    print(f"projection: {EPOCHS} epochs x {PAPER_STEPS // EPOCHS} steps ({TRAIN_VIDEOS:,} videos of "
          f"{VIDEO_FRAMES} frames, one {FRAMES}-frame chunk each, batch {BATCH}); paper: 2.5 days on a Titan Xp",
          flush=True)

    print("\n== I3D (random weights: speed only, the features mean nothing)", flush=True)
    print(f"I3D: {i3d_frames_per_second():.0f} frames/s (16-frame clips at 64x64, resized to 224)", flush=True)

    print("\n== loader vs model", flush=True)
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))
    from bench_loader import CLI_DEFAULT_WORKERS, loader_windows_per_second
    from conftest import write_glyph_idx

    from vidbench.data import mmnist

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "mmnist"
        mmnist.prepare(store, idx_dir=write_glyph_idx(Path(tmp) / "idx"), num_train=500, num_test=2)
        rates = {w: loader_windows_per_second(store, w, seconds=8, pin_memory=True) for w in (CLI_DEFAULT_WORKERS, 0)}
    need = max((r["steps_per_s"] * BATCH for r in results.values()), default=float("nan"))
    rate = rates[CLI_DEFAULT_WORKERS]
    print(f"loader: {rate:.0f} windows/s with the default {CLI_DEFAULT_WORKERS} workers, {rates[0]:.0f} with 0 "
          f"(memory-mapped store, pinned); fastest mode consumes {need:.0f} windows/s: loader / model = "
          f"{rate / need:.2f}x ({'OK' if rate >= need else 'the loader would starve the GPU'})", flush=True)
    print(f"\ngpu_check: {time.perf_counter() - began:.0f} s in all", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
