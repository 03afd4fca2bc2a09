"""`vidbench weights`: the pretrained files LPIPS and FVD need, where vidbench looks, and a verified download."""

from __future__ import annotations

from pathlib import Path

import click

from vidbench.cli.group import main


@main.command("weights")
@click.option("--weights-dir", type=click.Path(path_type=Path), default=None,
              help="folder searched first (as `vidbench evaluate --weights-dir`); --download writes there")
@click.option("--download", "name", default=None, help="download this file (e.g. alexnet-owt-7be5be79.pth), verified")
@click.option("--url", default=None, help="with --download: another address for the same file (a mirror)")
def weights_command(weights_dir, name, url):
    """List the weight files each metric needs and what is present; or download one.

    A download is written to a hidden temporary file of its own, checked against the known checksum, then
    moved in place: a wrong checksum or a cut connection leaves no file.
    """
    from vidbench.metrics import weights

    if name is not None:
        click.echo(f"wrote {weights.download(name, weights_dir, url)} (checksum verified)")
        return
    for row in weights.status(weights_dir):
        here = f"{row['state']}: {row['found']}" if row["found"] else "missing"
        click.echo(f"{row['name']}  ({row['used_by']})")
        click.echo(f"    expects {row['expected']}; {here}")
        click.echo(f"    looked in: {', '.join(row['looked_in'])}")
        if row["url"] and not row["found"]:
            click.echo(f"    get it: vidbench weights --download {row['name']}  (from {row['url']})")
