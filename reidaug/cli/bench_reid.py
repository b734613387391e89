"""``reidaug bench-reid``: does the synthetic data improve re-ID? Baseline vs augmented."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from reidaug.cli.app import App, pass_app, workers_option
from reidaug.cli.data import dataset_option, root_option
from reidaug.reid import BenchConfig, bench


def _seeds(ctx, param, value: str) -> list[int]:
    try:
        return [int(s) for s in value.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None


@click.command("bench-reid")
@dataset_option
@root_option
@click.option(
    "--shards",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Synthetic shard folder.",
)
@click.option("--model", default="osnet_x0_25", show_default=True, help="A torchreid model name.")
@click.option("--height", type=click.IntRange(min=16), default=128, show_default=True)
@click.option("--width", type=click.IntRange(min=16), default=64, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=2), default=32, show_default=True)
@click.option("--lr", type=float, default=3e-4, show_default=True)
@click.option("--label", type=click.Choice(["same-id", "lsro"]), default="same-id", show_default=True,
              help="same-id: a synthetic image keeps its source's id; lsro: uniform label distribution.")  # fmt: skip
@click.option("--synthetic-ratio", type=float, default=1.0, show_default=True,
              help="Synthetic images drawn per real image in each epoch.")  # fmt: skip
@click.option(
    "--seeds", default="1", show_default=True, callback=_seeds, help="Comma-separated seeds."
)
@click.option("--pretrained", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Local ImageNet weights for the backbone [default: train from scratch].")  # fmt: skip
@workers_option
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("bench-reid"),
    show_default=True,
)
@pass_app
def bench_reid_cmd(app: App, dataset, root, shards, pretrained, out, **kw) -> None:
    """Train a torchreid baseline with and without the synthetic images and compare them.

    Example: reidaug bench-reid --dataset market1501 --root ../shared/data/market1501 --shards shards/ --epochs 6
    """
    cfg = BenchConfig(dataset=dataset, root=str(root) if root else None, shards=str(shards), out=str(out),
                      pretrained=str(pretrained) if pretrained else None, device=app.device, **kw)  # fmt: skip
    with app.progress("training", fields="{arm} seed {seed} loss {loss:.3f}") as update:
        report = bench(cfg, progress=update, log=app.debug)
    s, d = report["summary"], report["delta"]
    t = Table(
        title=f"re-ID: {cfg.model} on {cfg.dataset} ({report['weights']}), mean ± std over seeds {cfg.seeds}"
    )
    for col in ("arm", "mAP", "Rank-1", "Rank-5", "Rank-10"):
        t.add_column(col, justify="right" if col != "arm" else "left")
    keys = ("mAP", "rank1", "rank5", "rank10")
    for arm in ("baseline", "augmented"):
        t.add_row(
            arm, *[f"{100 * s[arm][k]['mean']:.1f} ± {100 * s[arm][k]['std']:.1f}" for k in keys]
        )
    t.add_row("delta", *[f"{100 * d[k]:+.1f}" for k in keys])
    app.console.print(t)
    click.echo(f"reports: {out / 'report.json'}, {out / 'report.md'}, {out / 'cmc.png'}")
