"""Evaluation: protocols, sources of predictions (a model, a checkpoint or a predictions file), the metric
set, the per-batch run cache, streaming accumulators, and the results file (assembled, then read back).

    from vidbench.evaluate import evaluate
"""


def __getattr__(name):
    # Lazy: the leaderboard reads results files through vidbench.evaluate.results without importing torch.
    if name in ("evaluate", "summary_lines"):
        from vidbench.evaluate import assemble, engine

        return {"evaluate": engine.evaluate, "summary_lines": assemble.summary_lines}[name]
    raise AttributeError(f"module 'vidbench.evaluate' has no attribute {name!r}")
