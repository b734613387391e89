"""``reidaug synthesize`` and ``reidaug export``: bulk generation into HDF5 shards."""

from __future__ import annotations

import shlex
from pathlib import Path

import click
from rich.table import Table

from reidaug.cli.app import App, pass_app, workers_option
from reidaug.names import DATASETS, SOURCES, STRATEGIES


@click.command("synthesize")
@click.option(
    "--run",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Trained run directory.",
)
@click.option(
    "--source",
    type=click.Choice(SOURCES),
    default="generator",
    show_default=True,
    help="What draws the images: the --run's generator, or the training-free part warp of "
    "each source image into its target pose (no model; needs --dataset and --root).",
)
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Checkpoint file [default: the run's latest].",
)
@click.option(
    "--poses",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Target poses per training image.",
)
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Shard folder."
)
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Dataset root, when it moved since training [default: the run's].",
)
@click.option(
    "--dataset",
    type=click.Choice(sorted(DATASETS)),
    default=None,
    help="Generate the people of this dataset (at --root) with a generator trained on another "
    "one [default: the run's own dataset and training subset].",
)
@click.option(
    "--real-per-id",
    type=click.IntRange(min=1),
    default=None,
    help="With --dataset: synthesize from this many seeded images of each person, the subset "
    "bench-reid --real-per-id trains on [default: all].",
)
@click.option(
    "--subset-seed",
    type=int,
    default=None,
    help="With --dataset: the seed of --real-per-id's subset (bench-reid's --subset-seed) "
    "[default: 0].",
)
@click.option(
    "--strategy",
    type=click.Choice(STRATEGIES),
    default="random",
    show_default=True,
    help="How target poses are drawn from the training pose bank: at random, the k-means "
    "centroids of the bank, or farthest-point samples.",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Seed of pose sampling and every other random choice of the job; the same seed "
    "and checkpoint give byte-identical shards [default: the global --seed, 0].",
)
@click.option(
    "--shard-size",
    type=click.IntRange(min=1),
    default=2000,
    show_default=True,
    help="Images per shard file.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Images per generator call.",
)
@click.option(
    "--num-shards",
    type=click.IntRange(min=1),
    default=None,
    help="Split the job over N processes [default: torchrun's world size, else 1].",
)
@click.option(
    "--shard-index", type=click.IntRange(min=0), default=None, help="This process's part, 0..N-1."
)
@workers_option
@pass_app
def synthesize_cmd(
    app: App,
    run,
    source,
    checkpoint,
    poses,
    out,
    root,
    dataset,
    real_per_id,
    subset_seed,
    strategy,
    seed,
    shard_size,
    batch_size,
    num_shards,
    shard_index,
    workers,
) -> None:
    """Generate every training person in new poses into HDF5 shards (resumable, deterministic).

    Example: reidaug synthesize --run runs/00000-pg2-market1501 --poses 10 --seed 1 --out shards/

    Another dataset's people: reidaug synthesize --run RUN --dataset folder --root my-people/
    --out my-shards/

    The warp control: reidaug synthesize --source warp --dataset market1501 --root DATA
    --real-per-id 2 --out warp-shards/
    """
    from reidaug.synthesis import synthesize

    # the options that decide the images, canonical: verbosity, --out, workers and the process
    # split leave the shard bytes alone
    params = click.get_current_context().params
    skip = {"out", "workers", "num_shards", "shard_index"}
    if source == "generator":  # the default: commands of earlier shards stay the same
        skip.add("source")
    command = "reidaug synthesize " + shlex.join(
        x
        for k, v in params.items()
        if v is not None and k not in skip
        for x in (f"--{k.replace('_', '-')}", str(v))
    )
    parent = click.get_current_context().parent
    if (
        seed is not None
        and parent is not None
        and seed != app.seed
        and parent.get_parameter_source("seed") == click.core.ParameterSource.COMMANDLINE
    ):
        raise click.UsageError(f"--seed {seed} and the global --seed {app.seed} disagree; give one")
    if dataset is None and (real_per_id is not None or subset_seed is not None):
        raise click.UsageError(
            "--real-per-id and --subset-seed choose images of another --dataset; without it "
            "the run's own training subset is used"
        )
    seed = app.seed if seed is None else seed
    with app.progress("synthesizing") as update:
        s = synthesize(
            out,
            run=run,
            source=source,
            checkpoint=checkpoint,
            poses=poses,
            strategy=strategy,
            shard_size=shard_size,
            batch_size=batch_size,
            num_shards=num_shards,
            shard_index=shard_index,
            seed=seed,
            root=root,
            dataset=dataset,
            real_per_id=real_per_id,
            subset_seed=0 if subset_seed is None else subset_seed,
            device=app.device,
            workers=workers,
            command=command,
            progress=update,
            log=app.info,
        )
    t = Table(title=f"synthesis into {s['out']}")
    for col in (
        "images written",
        "shards written",
        "shards skipped",
        "shards in job",
        "job complete",
        "images/s",
    ):
        t.add_column(col, justify="right")
    t.add_row(
        str(s["written_images"]),
        str(s["written_shards"]),
        str(s["skipped_shards"]),
        str(s["total_shards"]),
        "yes" if s["complete"] else "no",
        f"{s['images_s']:.1f}",
    )
    app.console.print(t)


@click.command("export")
@click.option(
    "--shards",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Shard folder written by synthesize.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to create; the images go to OUT/bounding_box_train/.",
)
@pass_app
def export_cmd(app: App, shards: Path, out: Path) -> None:
    """Write shards as a Market-1501-layout folder of JPEGs (pid and camera kept).

    Example: reidaug export --shards shards/ --out synthetic-market/
    """
    from reidaug.synthesis import export

    with app.progress("exporting") as update:
        n = export(shards, out, progress=update)
    click.echo(f"wrote {n} images to {out / 'bounding_box_train'}")
