"""``reidaug poses``: estimate PG2-format pose annotations for any image folder, and show them."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import click
from click.core import ParameterSource

from reidaug.cli.app import App, pass_app
from reidaug.names import (
    DEFAULT_FRAMINGS,
    DEFAULT_MIN_VISIBILITY,
    DEFAULT_SCALE,
    KEYPOINTRCNN_WEIGHTS,
    PoseBackendName,
)

_framings = ",".join(f"{m:g}:{c:g}" for m, c in DEFAULT_FRAMINGS)


@click.group("poses")
def poses() -> None:
    """Estimate pose annotations (MediaPipe or keypoint R-CNN), and draw them for a check by eye."""


@poses.command("estimate")
@click.option(
    "--images",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder of person crops (.jpg/.png), not recursive; or give --dataset folder.",
)
@click.option(
    "--dataset",
    type=click.Choice(["folder"]),
    default=None,
    help="Annotate a folder dataset (every split, any image size) instead of --images.",
)
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The folder dataset's root (with --dataset folder).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Annotation CSV to write (the shipped Market format) [with --dataset folder: "
    "ROOT/poses.csv, in the original images' pixels].",
)
@click.option(
    "--backend",
    type=click.Choice(get_args(PoseBackendName)),
    default="auto",
    show_default=True,
    help="auto: keypoint R-CNN when --weights are given, else MediaPipe when installed.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Images per detector call (and per progress update).",
)
@click.option(
    "--min-visibility",
    type=click.FloatRange(0, 1),
    default=None,
    help=f"[mediapipe] Landmarks less visible than this are written as -1 "
    f"[default: {DEFAULT_MIN_VISIBILITY}].",
)
@click.option(
    "--framing",
    default=None,
    help="[mediapipe] MARGIN:CONFIDENCE pairs tried in order until a person is found: the "
    "grey margin around the upscaled crop (share of its longer side, each side) and "
    f"the detection confidence [default: {_framings}].",
)
@click.option(
    "--scale",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help=f"[mediapipe] Bicubic upscale of the crop before detection [default: {DEFAULT_SCALE}].",
)
@click.option(
    "--correction/--no-correction",
    default=None,
    help="[mediapipe] Move MediaPipe's points towards the OpenPose-18 conventions of the "
    "shipped Market annotations, with the per-keypoint offsets in a torso frame fitted on its "
    "training annotations [default: on].",
)
@click.option(
    "--weights",
    type=click.Path(path_type=Path),
    default=None,
    envvar="REIDAUG_KEYPOINT_WEIGHTS",
    help=f"[keypointrcnn] Weights ({KEYPOINTRCNN_WEIGHTS}) [default: the torch hub cache].",
)
@click.option(
    "--min-score",
    type=float,
    default=None,
    help="[keypointrcnn] Keypoints scoring below this heatmap logit are written as -1 "
    "[default: 1.0].",
)
@click.option(
    "--min-size",
    type=click.IntRange(min=32),
    default=None,
    help="[keypointrcnn] Detector input size (shorter side) crops are upscaled to [default: 800].",
)
@pass_app
def estimate_cmd(
    app: App,
    images: Path | None,
    dataset: str | None,
    root: Path | None,
    out: Path | None,
    backend: PoseBackendName,
    batch_size: int,
    min_visibility: float | None,
    framing: str | None,
    scale: float | None,
    correction: bool | None,
    weights: Path | None,
    min_score: float | None,
    min_size: int | None,
) -> None:
    """Estimate COCO-18 keypoints for every image and write them as a PG2-format CSV.

    MediaPipe's model ships in its wheel (pip install 'reidaug[pose]'); keypoint R-CNN needs
    weights. Options marked [backend] belong to that backend; passing one to the other is an error.

    Example: reidaug poses estimate --images my-crops/ --out my-crops.csv

    A folder dataset (writes ROOT/poses.csv): reidaug poses estimate --dataset folder --root
    my-people/
    """
    from reidaug.data.estimate import estimate, estimate_folder
    from reidaug.data.mediapipe_pose import parse_framings
    from reidaug.device import resolve_device

    source = click.get_current_context().get_parameter_source("weights")
    if backend == "mediapipe" and source is ParameterSource.ENVIRONMENT:
        weights = None  # the environment's weights are for the other backend, not a user's flag
    if (images is None) == (dataset is None):
        raise click.UsageError("give --images DIR (with --out FILE) or --dataset folder --root DIR")
    if dataset is None and root is not None:
        raise click.UsageError("--root goes with --dataset folder; --images names the folder")
    if dataset is not None and root is None:
        raise click.UsageError("--dataset folder needs --root DIR")
    if images is not None and out is None:
        raise click.UsageError("--images needs --out FILE")
    options = {
        "batch_size": batch_size,
        "min_visibility": min_visibility,
        "scale": scale,
        "framings": None if framing is None else parse_framings(framing),
        "correct": correction,
        "min_score": min_score,
        "min_size": min_size,
        "device": resolve_device(app.device),
    }
    with app.progress("estimating poses") as update:
        if dataset is not None:
            from reidaug.data import build_dataset

            ds = build_dataset(dataset, root)
            summary = estimate_folder(ds, out, backend, weights, progress=update, **options)
            out = Path(summary["out"])
        else:
            summary = estimate(images, out, backend, weights, progress=update, **options)
    app.info(
        f"{summary['backend']}: {summary['images']} images, {summary['detections']} with a "
        f"centre person, {summary['all_missing']} all-missing rows"
    )
    click.echo(f"wrote {out}")


@poses.command("show")
@click.option(
    "--annotations",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Annotation CSV.",
)
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
    from reidaug.data.estimate import show

    n = show(annotations, images, out, count=count, seed=app.seed)
    app.info(f"drew {n} skeletons (right side red, left side blue)")
    click.echo(f"wrote {out}")
