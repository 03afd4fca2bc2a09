"""`vidbench train`, `vidbench sweep`, `vidbench sample` and `vidbench export`."""

from __future__ import annotations

from pathlib import Path

import click

from vidbench.cli.group import dataset_dir, main

MODEL_HELP = "model family (`vidbench ls models`), or your own as package.module:attr (see vidbench.models.base)"


@main.command()
@click.option("--model", "model_name", required=True, help=MODEL_HELP)
@click.option("--dataset", required=True, help="prepared dataset: name (datasets/<name>) or folder")
@click.option("--preset", default=None, help="model preset (default: the dataset's name when the family has it)")
@click.option("--steps", type=int, default=None, help="total optimiser steps (a rerun with more continues the run)")
@click.option("--epochs", type=int, default=None,
              help="total epochs instead of --steps (default: the paper's; an epoch is every non-overlapping "
                   "--seq-len window of every training video, as in the authors' loader)")
@click.option("--batch-size", type=int, default=50, show_default=True, help="global batch, split over processes")
@click.option("--seq-len", type=int, default=100, show_default=True, help="frames per training window")
@click.option("--lr", type=float, default=None, help="default: the preset's learning rate")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="model config override (repeatable)")
@click.option("--run-dir", type=click.Path(path_type=Path), default=None, help="default: models/<model>-<preset>-<dataset>")
@click.option("--checkpoint-every", type=int, default=1000, show_default=True, help="steps between checkpoints")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N (one process on GPU N)")
@click.option("--amp", type=click.Choice(["none", "bf16", "fp16"]), default="none", show_default=True,
              help="mixed precision (autocast); bf16 needs a CPU or GPU with native bf16 to be faster")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the loss (first step compiles: minutes)")
@click.option("--channels-last/--no-channels-last", default=None,
              help="convolutions in channels-last memory format [default: on for CPU, and on CUDA under --amp]")
@click.option("--cuda-graphs", is_flag=True,
              help="CUDA: capture the training step once as a CUDA graph and replay it (the GPU step is launch-bound)")
@click.option("--num-workers", type=int, default=2, show_default=True, help="DataLoader worker processes")
@click.option("--minutes", type=float, default=None,
              help="wall-clock budget: stop with a checkpoint when it runs out (the same command resumes)")
@click.option("--init-from", type=click.Path(path_type=Path), default=None,
              help="start from an exported weights file (vidbench export, a zoo file); optimiser fresh, lineage kept")
def train(model_name, dataset, preset, steps, epochs, batch_size, seq_len, lr, settings, run_dir, checkpoint_every,
          seed, device, amp, compile_, channels_last, cuda_graphs, num_workers, minutes, init_from):
    """Train a model; rerunning the same command resumes. Works under `torchrun --nproc_per_node N`."""
    from vidbench.train import train as train_model
    from vidbench.train.config import parse_set_options

    train_model(model_name, dataset_dir(dataset), preset=preset, overrides=parse_set_options(settings),
                steps=steps, epochs=epochs, batch_size=batch_size, seq_len=seq_len, lr=lr, run_dir=run_dir,
                checkpoint_every=checkpoint_every, seed=seed, device=device, amp=amp, compile=compile_,
                channels_last=channels_last, cuda_graphs=cuda_graphs, num_workers=num_workers, minutes=minutes,
                init_from=init_from, echo=lambda line: click.echo(line, err=True))


@main.command()
@click.option("--model", "model_name", required=True, help=MODEL_HELP)
@click.option("--dataset", required=True, help="prepared dataset: name (datasets/<name>) or folder")
@click.option("--preset", default=None, help="model preset (default: the dataset's name when the family has it)")
@click.option("--lr", "lrs", default="1e-4,3e-4,1e-3", show_default=True, help="learning rates, in [1e-4, 1e-3]")
@click.option("--dec-std", "stds", default="0.1,0.3,1", show_default=True, help="decoder stds, in [0.1, 1]")
@click.option("--steps", type=int, default=None, help="optimiser steps per run (default: the paper's epochs)")
@click.option("--batch-size", type=int, default=50, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=Path("models/sweep"), show_default=True)
@click.option("--results", type=click.Path(path_type=Path), default=None, help="evaluate each run into this folder")
@click.option("--protocol", default=None, help="evaluation protocol with --results (default <dataset>@1)")
def sweep(model_name, dataset, preset, lrs, stds, steps, batch_size, out, results, protocol):
    """The paper's baseline tuning: one run per (lr, decoder std), comparable on the leaderboard (see sweep.py)."""
    from vidbench.train.sweep import parse_values
    from vidbench.train.sweep import sweep as run_sweep

    lrs, stds = parse_values("--lr", lrs), parse_values("--dec-std", stds)
    run_sweep(model_name, dataset_dir(dataset), lrs=lrs, stds=stds, preset=preset, out_dir=out,
              results=results, protocol=protocol, train_kwargs={"steps": steps, "batch_size": batch_size},
              echo=lambda line: click.echo(line, err=True))


@main.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None, help=".mp4 or .gif (default: RUN/sample.mp4)")
@click.option("--dataset", default=None, help="prepared dataset whose test split to use (default: the run's)")
@click.option("--num-videos", type=int, default=4, show_default=True, help="the first N test videos")
@click.option("--context", type=int, default=36, show_default=True, help="ground-truth frames given")
@click.option("--horizon", type=int, default=64, show_default=True, help="frames predicted open-loop")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--fps", type=float, default=10.0, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N (as evaluate)")
def sample(run, out, dataset, num_videos, context, horizon, seed, fps, device):
    """Side-by-side video (ground truth | prediction) of a run's open-loop predictions (RUN: folder or .pt)."""
    from vidbench.analyze.sample import sample as write_sample

    path = write_sample(run, out, dataset=dataset_dir(dataset) if dataset else None, num_videos=num_videos,
                        context=context, horizon=horizon, seed=seed, fps=fps, device=device)
    click.echo(str(path))


@main.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="the weights file to write (NAME.pt)")
@click.option("--command", "train_command", help="the `vidbench train ...` command that trained it, recorded")
@click.option("--note", help="anything else to record (machine, wall time, why)")
@click.option("--overwrite", is_flag=True, help="replace an earlier export at --out (never any other file)")
@click.option("--dtype", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True,
              help="weights stored as float32 or bfloat16 (half the bytes; loading casts back to float32)")
def export(run, out, train_command, note, overwrite, dtype):
    """Write RUN's model as one weights file to share (no optimiser state); its name labels its rows."""
    from vidbench.train.checkpoint import export_weights

    record = {k: v for k, v in {"command": train_command, "note": note}.items() if v}
    click.echo(f"wrote {export_weights(run, out, record, overwrite=overwrite, dtype=dtype)}")
