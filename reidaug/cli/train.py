"""``reidaug train``: train PG2 (or MsCGAN) generators."""

from __future__ import annotations

from pathlib import Path

import click

from reidaug.cli.app import App, pass_app, workers_option
from reidaug.cli.data import annotations_option, dataset_option, root_option
from reidaug.config import TrainConfig
from reidaug.training import RECIPES, train


@click.command("train")
@dataset_option
@root_option
@annotations_option
@click.option("--model", type=click.Choice(sorted(RECIPES)), default="pg2", show_default=True)
@click.option(
    "--variant",
    type=click.Choice(["g1-l1", "g1-posemask", "g1-d", "full"]),
    default="full",
    show_default=True,
    help="PG2 ablation: G1 with L1, G1 with pose-mask L1, G1+D, or G1+G2+D.",
)
@click.option("--stage", type=click.Choice(["1", "2", "all"]), default="all", show_default=True)
@click.option(
    "--iters",
    type=click.IntRange(min=1),
    default=None,
    help="Iterations of every stage [default: the paper's, 22000 then 14000 for PG2].",
)
@click.option(
    "--iters1",
    type=click.IntRange(min=1),
    default=None,
    help="Stage-1 iterations (overrides --iters).",
)
@click.option(
    "--iters2",
    type=click.IntRange(min=1),
    default=None,
    help="Stage-2 iterations (overrides --iters).",
)
@click.option(
    "--minutes",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Time budget: checkpoint and stop after this many minutes.",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option(
    "--width",
    type=click.IntRange(min=1),
    default=128,
    show_default=True,
    help="Base channel count of the generators (128 in the papers).",
)
@click.option(
    "--d-width",
    type=click.IntRange(min=1),
    default=None,
    help="Base channels of D [default: model's].",
)
@click.option(
    "--lr",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Adam learning rate [default: model's].",
)
@click.option("--heatmap", type=click.Choice(["pg2", "gaussian"]), default="pg2", show_default=True)
@click.option("--no-flip", is_flag=True, help="Disable left-right flip augmentation.")
@workers_option
@click.option("--log-every", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--sample-every", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs"),
    show_default=True,
    help="Folder of run directories.",
)
@click.option(
    "--resume",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Continue this run directory from its latest checkpoint.",
)
@click.option(
    "--lambda-l1", type=float, default=None, help="Weight of the L1 term in stage 2 [PG2: 10]."
)
@click.option("--lambda-bg", type=float, default=None, help="MsCGAN background-loss weight.")
@click.option("--lambda-d1", type=float, default=None, help="MsCGAN weight of D1.")
@click.option("--lambda-d2", type=float, default=None, help="MsCGAN weight of D2.")
@click.option(
    "--num-scales",
    type=click.IntRange(1, 3),
    default=2,
    show_default=True,
    help="MsCGAN discriminator scales.",
)
@pass_app
def train_cmd(app: App, iters: int | None, iters1: int | None, iters2: int | None, minutes: float | None,
              resume: Path | None, no_flip: bool, out: Path, root: Path | None, annotations: Path | None,
              **kw) -> None:  # fmt: skip
    """Train pose-guided person generators; writes a run directory with checkpoints and samples.

    Example: reidaug train --dataset market1501 --root ../shared/data/market1501 --model pg2 --width 16 --minutes 25
    """
    defaults = TrainConfig()
    cfg = TrainConfig(
        iters1=iters1 or iters or defaults.iters1,
        iters2=iters2 or iters or defaults.iters2,
        max_seconds=minutes * 60 if minutes else None,
        flip=not no_flip,
        out=str(out),
        root=str(root) if root else None,
        annotations=str(annotations) if annotations else None,
        seed=app.seed,
        device=app.device,
        **kw,
    )
    with app.progress(
        "training", fields="stage {stage} | loss {loss:.4f} | {it_s:.2f} it/s"
    ) as update:
        run = train(cfg, resume=resume, progress=update, log=app.debug)
    click.echo(f"run directory: {run}")
