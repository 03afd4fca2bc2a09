"""Where a measured row's weights came from, said on the page beside the numbers: a zoo model (trained on a
GPU, its manifest in vidbench/zoo/) is not a demo run of a few CPU minutes, and a model whose training was
steered by its test-video scores is not a held-out estimate.

    provenance(result)    -> "measured", "shipped" or "zoo" (the table's source column and the page's banner)
    origin_note(result)   -> one line for the page's notes, or None
"""

from __future__ import annotations

from dataclasses import dataclass

from vidbench.evaluate.results import Result

# A measured row's provenance: evaluated here from a run trained here, from a weights file that came with
# vidbench (`vidbench export` records how it was trained), or from a model zoo's weights.
MEASURED_HERE, SHIPPED, ZOO = "measured", "shipped", "zoo"
PROVENANCE_KINDS = (MEASURED_HERE, SHIPPED, ZOO)
# Weights whose training length was chosen after seeing their scores on the test videos they are ranked on,
# by checkpoint sha256 (a name can be reused; the bytes cannot).
SEEN_TEST_SCORES = {
    "ee25593e62af9f3f8275cf0c493d5d79286a6617d0b2851a07b5d819a5805741":
        "trained longer (12,000 -> 20,000 steps) after its scores on the demo's test videos were seen "
        "(vidbench/reference/cwvae-reference.json): its mmnist-short@1 numbers are not a held-out estimate",
}


def _record(result: Result) -> dict:
    model = result.raw.get("model") if isinstance(result.raw.get("model"), dict) else {}
    return model.get("record") if isinstance(model.get("record"), dict) else {}


def provenance(result: Result) -> str:
    """A results file's provenance kind: its own `provenance` field (a zoo job writes "zoo"), else "zoo" for a
    zoo export's record, "shipped" for weights that came with a record of how they were trained (vidbench
    export), else measured here."""
    model = result.raw.get("model") if isinstance(result.raw.get("model"), dict) else {}
    stated = result.raw.get("provenance") or model.get("provenance")
    if stated in PROVENANCE_KINDS:
        return stated
    record = _record(result)
    if record.get("zoo"):
        return ZOO
    return SHIPPED if record else MEASURED_HERE


@dataclass(frozen=True)
class Budget:
    """The training behind a row's weights, over every run of its lineage."""
    steps: int
    wall_s: float
    runs: int
    devices: tuple[str, ...]  # as recorded: "cuda: NVIDIA H100 80GB HBM3", "cpu: x86_64, 2 threads"

    def __str__(self) -> str:
        where = ", ".join(self.devices) or "an unrecorded device"
        return f"{self.steps:,} steps in {self.wall_s / 60:.1f} min of training over {self.runs} run(s) on {where}"


def training_budget(result: Result) -> Budget:
    """From the weights' record (an export's lineage); without one, the checkpoint's own step and time."""
    model = result.raw.get("model") if isinstance(result.raw.get("model"), dict) else {}
    lineage = [run for run in _record(result).get("lineage") or [] if isinstance(run, dict)]
    devices = sorted({s["device"] for run in lineage for s in run.get("sessions") or [] if s.get("device")})
    steps = sum(int(run.get("steps") or 0) for run in lineage) or int(model.get("trained_steps") or 0)
    wall_s = (sum(float(run.get("wall_s") or 0.0) for run in lineage) if lineage
              else float(model.get("training_seconds") or 0.0))
    return Budget(steps, wall_s, len(lineage) or 1, tuple(devices))


def origin_note(result: Result) -> str | None:
    model = result.raw.get("model") if isinstance(result.raw.get("model"), dict) else {}
    seen = SEEN_TEST_SCORES.get(str(model.get("checkpoint_sha256")))
    if seen:
        return f"{result.model}: {seen}"
    record = _record(result)
    if not record.get("zoo"):
        return None
    budget = training_budget(result)
    devices = sorted({d.split(": ", 1)[-1] for d in budget.devices})
    config = model.get("config") or {}
    where = " and ".join(devices) or "an unrecorded device"
    return (f"{result.model}: zoo model, trained {budget.steps:,} steps on {where} over {budget.runs} run(s) "
            f"(vidbench/zoo/{record['zoo']}.json: data, commands, lineage){_preset(config)}")


def _preset(config: dict) -> str:
    return f"; preset {config['preset']}" if config.get("preset") else ""
