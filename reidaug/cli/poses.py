"""``reidaug poses``: estimate PG2-format pose annotations for any image folder, and show them."""

from __future__ import annotations

from pathlib import Path

import click

from reidaug.cli.app import App, pass_app
from reidaug.data.estimate import WEIGHTS_FILE, estimate, show
from reidaug.device import resolve_device


@click.group("poses")
def poses() -> None:
    """Estimate pose annotations with keypoint R-CNN, and draw them for a check by eye."""


@poses.command("estimate")
@click.option("--images", type=click.Path(path_type=Path), required=True,
              help="Folder of person crops (.jpg/.png), not recursive.")  # fmt: skip
@click.option("--weights", type=click.Path(path_type=Path), default=None, envvar="REIDAUG_KEYPOINT_WEIGHTS",
              help=f"keypoint R-CNN weights ({WEIGHTS_FILE}) [default: the torch hub cache].")  # fmt: skip
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Annotation CSV to write (the shipped Market format).")  # fmt: skip
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--min-score", type=float, default=1.0, show_default=True,
              help="Keypoints scoring below this (keypoint R-CNN heatmap logit) are written as -1.")  # fmt: skip
@click.option("--min-size", type=click.IntRange(min=32), default=800, show_default=True,
              help="Detector input size (shorter side); crops are upscaled to it.")  # fmt: skip
@pass_app
def estimate_cmd(app: App, images: Path, weights: Path | None, out: Path, batch_size: int, min_score: float,
                 min_size: int) -> None:  # fmt: skip
    """Run keypoint R-CNN on every image and write COCO-18 keypoints as a PG2-format CSV.

    Example: reidaug poses estimate --images Market-1501-v15.09.15/bounding_box_train
    --weights keypointrcnn_resnet50_fpn_coco-fc266e95.pth --out train.csv
    """
    with app.progress("estimating poses") as update:
        summary = estimate(images, out, weights=weights, min_score=min_score, batch_size=batch_size,
                           device=resolve_device(app.device), min_size=min_size, progress=update)  # fmt: skip
    app.info(
        f"{summary['images']} images, {summary['detections']} with a centre person, "
        f"{summary['all_missing']} all-missing rows"
    )
    click.echo(f"wrote {out}")


@poses.command("show")
@click.option("--annotations", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Annotation CSV.")  # fmt: skip
@click.option(
    "--images", type=click.Path(path_type=Path), required=True, help="Folder of the images."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Grid PNG to write.",
)
@click.option(
    "--count", type=click.IntRange(min=1), default=32, show_default=True, help="Images to draw."
)
@pass_app
def show_cmd(app: App, annotations: Path, images: Path, out: Path, count: int) -> None:
    """Draw skeletons over a seeded sample of annotated images, for a check by eye.

    Example: reidaug poses show --annotations train.csv --images bounding_box_train --out grid.png
    """
    n = show(annotations, images, out, count=count, seed=app.seed)
    app.info(f"drew {n} skeletons (right side red, left side blue)")
    click.echo(f"wrote {out}")
