"""`vidbench evaluate`."""

from __future__ import annotations

from pathlib import Path

import click

from vidbench.cli.group import dataset_dir, main, progress
from vidbench.evaluate.protocols import PREDICTIONS_FORMAT


@main.command("evaluate")
@click.option("--model", default=None,
              help="registered name (`vidbench ls models`) or your own as package.module:attr (a VideoModel class "
                   "or factory importable from PYTHONPATH); with --predictions, the row's label")
@click.option("--preset", default=None, help="model preset (untrained parameter-free models only)")
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None,
              help="checkpoint file, training run folder, or zoo:<name> (a zoo model, its sha256 checked; "
                   "default: the model's one run under models/)")
@click.option("--predictions", type=click.Path(path_type=Path), default=None,
              help="score a file instead of running a model: " + PREDICTIONS_FORMAT + "; checked exactly "
                   "against the protocol (`vidbench contexts` writes the context frames to predict from)")
@click.option("--parameters", type=int, default=None,
              help="with --predictions: your model's parameter count, recorded as stated by you (shown on the page)")
@click.option("--dataset", default=None,
              help="prepared dataset: name (datasets/<name>) or folder (default: the one the run was trained on)")
@click.option("--protocol", default=None, help="evaluation protocol (default <dataset>@1; see `vidbench ls protocols`)")
@click.option("--horizon", type=int, default=None,
              help="predict up to frame N of each test video, counted from the first frame as the paper does "
                   "(minerl: --horizon 500 = 36 context + 464 predicted = minerl@1); another N renames the protocol")
@click.option("--num-videos", type=int, default=None, help="override the number of test videos (renames the protocol)")
@click.option("--num-samples", type=int, default=None, help="override samples per video (renames the protocol)")
@click.option("--reduce", default=None,
              help="samples -> one value per video: mean, best:<metric> (every metric from the sample best by it), "
                   "or best-per-metric (the authors' eval: each metric from its own best sample); renames the protocol")
@click.option("--metrics", default=None, help="comma-separated subset, e.g. ssim,psnr (default: the protocol's)")
@click.option("--skip-unavailable", is_flag=True, help="record metrics without local weights as unavailable")
@click.option("--weights-dir", type=click.Path(path_type=Path), default=None, help="folder with LPIPS/I3D weight files")
@click.option("--batch-size", type=int, default=8, show_default=True, help="videos per batch (part of the seeding)")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="results file (default: leaderboard/results/<run>-<protocol>.json, where `vidbench leaderboard` reads)")
@click.option("--run-dir", type=click.Path(path_type=Path), default=None,
              help="cache folder (default: <checkpoint run>/eval-<protocol>/, runs/evals/<model>-<protocol>/, or beside --out)")
@click.option("--replace", is_flag=True,
              help="overwrite an earlier result of the same model and protocol from another checkpoint (retrained)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
def evaluate_command(model, preset, checkpoint, predictions, parameters, dataset, protocol, horizon, num_videos, num_samples,
                     reduce, metrics, skip_unavailable, weights_dir, batch_size, out, run_dir, replace, seed, device):
    """Open-loop predictions -> SSIM/PSNR/LPIPS/FVD -> a results file. Resumable; shards under torchrun.

    \b
    vidbench evaluate --model cwvae --horizon 500     # the trained cwvae run under models/, e.g. minerl@1
    vidbench evaluate --model my_pkg.mod:MyModel --dataset mmnist --protocol mmnist-short@1   # your model
    vidbench evaluate --predictions preds.npy --model my-jax-model --dataset mmnist --protocol mmnist-short@1
    """
    import os

    from vidbench.evaluate import evaluate, summary_lines
    from vidbench.evaluate.target import resolve_target

    main_rank = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 prints
    checkpoint, data = resolve_target(model, checkpoint, predictions, dataset_dir(dataset) if dataset else None)
    results = evaluate(
        data, model=model, preset=preset, checkpoint=checkpoint, predictions=predictions,
        protocol=protocol, last_frame=horizon, num_videos=num_videos, num_samples=num_samples, reduce=reduce,
        metrics=[m.strip() for m in metrics.split(",") if m.strip()] if metrics else None,
        skip_unavailable=skip_unavailable, weights_dir=weights_dir, batch_size=batch_size, out=out,
        results_dir=Path("leaderboard") / "results", run_dir=run_dir, replace=replace, seed=seed, device=device,
        progress=progress, echo=lambda line: click.echo(line, err=True) if main_rank else None,
        parameters=parameters,
    )
    if main_rank:
        for line in summary_lines(results):
            click.echo(line)


@main.command("contexts")
@click.option("--dataset", required=True, help="prepared dataset: name (datasets/<name>) or folder")
@click.option("--protocol", default=None, help="evaluation protocol (default <dataset>@1; see `vidbench ls protocols`)")
@click.option("--horizon", type=int, default=None, help="as `vidbench evaluate --horizon` (counted from the first frame)")
@click.option("--num-videos", type=int, default=None, help="as `vidbench evaluate --num-videos`")
@click.option("--num-samples", type=int, default=None, help="as `vidbench evaluate --num-samples`")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="the .npz to write")
def contexts_command(dataset, protocol, horizon, num_videos, num_samples, out):
    """Write a protocol's context frames for a model outside vidbench (JAX, TensorFlow ...).

    \b
    OUT.npz: context uint8 [N,Tc,H,W,C] (0-255), video int64 [N] (test-split index),
    predictions_shape [N,S,T,H,W,C], protocol, test_data_sha256. Predict from row n
    the T frames after the context, then `vidbench evaluate --predictions FILE`.
    """
    from vidbench.evaluate.contexts import contexts_lines, write_contexts

    record = write_contexts(dataset_dir(dataset), out, protocol=protocol, last_frame=horizon,
                            num_videos=num_videos, num_samples=num_samples)
    for line in contexts_lines(record):
        click.echo(line)
