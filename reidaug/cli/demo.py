"""``reidaug demo``: the whole pipeline on the embedded dataset, ending with one summary table."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from reidaug.cli.app import App, pass_app


@click.command("demo")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-out"),
    show_default=True,
    help="Folder for the dataset, run, shards, reports and summary.",
)
@click.option(
    "--ids", type=click.IntRange(min=4), default=32, show_default=True, help="Identities per split."
)
@click.option(
    "--iters1", type=click.IntRange(min=1), default=1200, show_default=True, help="G1 iterations."
)
@click.option(
    "--iters2",
    type=click.IntRange(min=1),
    default=400,
    show_default=True,
    help="G2 + D iterations.",
)
@click.option(
    "--poses",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="New poses per training image.",
)
@click.option(
    "--reid-epochs",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Epochs of each re-ID arm.",
)
@click.option(
    "--test-pairs",
    type=click.IntRange(min=8),
    default=300,
    show_default=True,
    help="Held-out pairs scored.",
)
@pass_app
def demo_cmd(
    app: App,
    out: Path,
    ids: int,
    iters1: int,
    iters2: int,
    poses: int,
    reid_epochs: int,
    test_pairs: int,
) -> None:
    """Run the whole pipeline on the embedded dataset: data, PG2, synthesis, re-ID bench, metrics.

    The defaults take about 10 minutes on 2 CPU cores; nothing is downloaded.

    Example: reidaug demo --out demo-out
    """
    from reidaug.demo import DemoConfig, demo
    from reidaug.device import resolve_device

    cfg = DemoConfig(
        out=str(out),
        ids=ids,
        iters1=iters1,
        iters2=iters2,
        poses=poses,
        reid_epochs=reid_epochs,
        test_pairs=test_pairs,
        seed=app.seed,
        device=str(resolve_device(app.device)),
    )
    with app.progress("demo") as update:
        summary = demo(cfg, progress=update, log=app.info)
    quality = Table(title="image quality on held-out test pairs (embedded dataset)")
    for col in ("figure", "G1", "G2", "copy baseline", "real target"):
        quality.add_column(col, justify="left" if col == "figure" else "right")
    reid = Table(
        title=f"re-ID without and with the synthetic images ({summary['reid_model']}, from scratch)"
    )
    for col in ("figure", "baseline", "augmented", "delta"):
        reid.add_column(col, justify="left" if col == "figure" else "right")
    for r in summary["rows"]:
        if "G1" in r:
            quality.add_row(
                r["row"], *(f"{r[k]:.3f}" for k in ("G1", "G2", "copy baseline", "real target"))
            )
        else:
            reid.add_row(
                r["row"],
                f"{100 * r['baseline']:.1f}",
                f"{100 * r['augmented']:.1f}",
                f"{100 * r['delta']:+.1f}",
            )
    app.console.print(quality)
    app.console.print(reid)
    app.info(
        f"{summary['synthetic_images']} synthetic images in {out / 'shards'}; "
        f"took {summary['total_seconds']:.0f} s"
    )
    click.echo(f"wrote {out / 'summary.md'}")
