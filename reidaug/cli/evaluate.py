"""``reidaug evaluate``: SSIM, mask-SSIM, IS, mask-IS and FID under named protocols."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from reidaug.cli.app import App, comma_choices, pass_app
from reidaug.names import DATASETS, METRICS


@click.command("evaluate")
@click.option(
    "--run",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Run directory to score.",
)
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Checkpoint file [default: the run's latest].",
)
@click.option(
    "--images",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Score already generated images named <from>___<to>.png instead of a run.",
)
@click.option(
    "--dataset",
    type=click.Choice(sorted(DATASETS)),
    default=None,
    help="Dataset [default: the run's].",
)
@click.option(
    "--root",
    type=click.Path(path_type=Path),
    default=None,
    help="Dataset root [default: the run's].",
)
@click.option(
    "--protocol",
    type=click.Choice(["pg2", "posegan", "both"]),
    default="both",
    show_default=True,
    help="pg2: 12,800 seeded pairs, 7x7 SSIM; posegan: the 12,000 standard pairs, Gaussian SSIM.",
)
@click.option(
    "--metrics",
    "metric_names",
    default="ssim,mssim",
    show_default=True,
    callback=comma_choices(METRICS, "metric"),
    help=f"Comma-separated, from: {', '.join(METRICS)}.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="Only the first N pairs of each protocol.",
)
@click.option(
    "--inception-weights",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    envvar="REIDAUG_INCEPTION_WEIGHTS",
    help="pt_inception-2015-12-05-6726825d.pth (IS, FID).",
)
@click.option(
    "--is-protocol",
    type=click.Choice(["is-tf2015", "is-torchvision"]),
    default="is-tf2015",
    show_default=True,
)
@click.option(
    "--reid-checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="re-ID model for idp (bench-reid writes OUT/baseline-seed1.pt) [default: train "
    "one on the real training set once and cache it].",
)
@click.option(
    "--reid-recipe",
    type=click.Choice(["cpu", "pretrained"]),
    default=None,
    help="Recipe of the cached idp judge: cpu (osnet_x0_25 from scratch, the judge of the "
    "earlier studies) or pretrained (the ImageNet MobileNetV2) [default: cpu].",
)
@click.option(
    "--reid-model",
    default=None,
    help="torchreid model of the cached idp judge [default: the cpu recipe's, osnet_x0_25].",
)
@click.option(
    "--reid-epochs",
    type=click.IntRange(min=1),
    default=None,
    help="Epochs of the cached idp judge [default: the cpu recipe's, 38].",
)
@click.option(
    "--shards",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="With idp: also score synthesized training-id shards (classifier top-1).",
)
@click.option(
    "--raw-weights",
    is_flag=True,
    help="Score a run trained with --ema on its last weights, not their moving average.",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option(
    "--json",
    "json_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write every figure with its metric and protocol to this file.",
)
@pass_app
def evaluate_cmd(
    app: App,
    run,
    checkpoint,
    images,
    dataset,
    root,
    protocol,
    metric_names,
    limit,
    inception_weights,
    is_protocol,
    reid_checkpoint,
    reid_recipe,
    reid_model,
    reid_epochs,
    shards,
    raw_weights,
    batch_size,
    json_out,
) -> None:
    """Score generated images against the targets of the protocol's test pairs.

    idp ranks each generated image against the real gallery with a re-ID judge, leaving out
    the pair's two real images and every view of the person from their two cameras, and reports
    the judge's own mAP on the real queries beside it; sharpness gives Laplacian variance and
    high-frequency energy inside the pose mask as ratios to the real targets.

    Example: reidaug evaluate --run runs/00000-pg2-market1501 --protocol both --metrics ssim,mssim
    """
    from reidaug.atomic import check_writable, write_json
    from reidaug.config import EvalConfig
    from reidaug.metrics import evaluate
    from reidaug.metrics.evaluate import as_table

    if json_out:
        check_writable(json_out)  # before the scoring, whose figures would be lost
    protocols = ["pg2", "posegan"] if protocol == "both" else [protocol]
    with app.progress("evaluating") as update:
        cfg = EvalConfig(
            run=run,
            checkpoint=checkpoint,
            images=images,
            dataset=dataset,
            root=root,
            protocols=protocols,
            metrics=metric_names,
            limit=limit,
            batch_size=batch_size,
            seed=app.seed,
            device=app.device,
            inception_weights=inception_weights,
            is_protocol=is_protocol,
            reid_checkpoint=reid_checkpoint,
            shards=shards,
            reid_recipe={"recipe": reid_recipe, "model": reid_model, "epochs": reid_epochs},
            raw_weights=raw_weights,
        )
        records = evaluate(cfg, progress=update, log=app.info)
    cols, rows = as_table(records)
    table = Table(title="image quality (protocol in parentheses)")
    table.add_column("source")
    for c in cols:
        table.add_column(c, justify="right")
    for src, vals in rows:
        table.add_row(src, *vals)
    app.console.print(table)
    if json_out:
        write_json(json_out, records)
        click.echo(f"wrote {json_out}")
