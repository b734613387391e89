"""``reidaug data``: check a dataset, write pair lists, make the embedded dataset."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from reidaug.cli.app import App, pass_app
from reidaug.names import DATASETS

dataset_option = click.option(
    "--dataset",
    type=click.Choice(sorted(DATASETS)),
    default="market1501",
    show_default=True,
    help="Dataset layout to read.",
)
root_option = click.option(
    "--root",
    type=click.Path(path_type=Path),
    default=None,
    envvar="REIDAUG_DATA",
    help="Folder holding Market-1501-v15.09.15/ (or the split folders) and annotations/ "
    "[default: $REIDAUG_DATA]; with --dataset folder, your folder of crops.",
)
annotations_option = click.option(
    "--annotations",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder of the annotation CSVs [default: ROOT/annotations].",
)


@click.group("data")
def data() -> None:
    """Inspect datasets, write pair lists and make the embedded dataset."""


@data.command("check")
@dataset_option
@root_option
@annotations_option
@click.option("--quick", is_flag=True, help="Skip decoding every image.")
@pass_app
def check(app: App, dataset: str, root: Path | None, annotations: Path | None, quick: bool) -> None:
    """Validate a dataset's layout and print what the pipeline will see.

    Example: reidaug data check --dataset market1501 --root ../shared/data/market1501
    """
    from reidaug.data import build_dataset
    from reidaug.data.check import check_dataset

    ds = build_dataset(dataset, root, annotations)
    with app.progress("decoding images") as update:
        rep = check_dataset(ds, decode=not quick, progress=update)
    t = Table(title=f"{rep.dataset} at {rep.root}")
    for col in (
        "split",
        "images",
        "ids",
        "cameras",
        "annotated",
        "all-missing poses",
        "valid poses (ids)",
    ):
        t.add_column(col, justify="right" if col != "split" else "left")
    for s in rep.splits:
        na = "-" if s.annotated is None else None
        t.add_row(
            s.split,
            str(s.images),
            str(s.ids),
            str(s.cameras),
            na or f"{s.annotated}/{s.images + (rep.junk_images if s.split == 'gallery' else 0)}",
            na or str(s.all_missing),
            na or f"{s.valid_pose} ({s.valid_ids})",
        )
    app.console.print(t)
    click.echo(f"gallery junk images (-1): {rep.junk_images}")
    click.echo(f"valid train pairs: {rep.train_pairs}")
    click.echo(f"test pairs: {rep.test_pairs}")
    if rep.decoded:
        click.echo(f"images decoded: {rep.decoded}")
    for w in rep.warnings:
        click.echo(f"warning: {w}", err=True)


@data.command("pairs")
@dataset_option
@root_option
@annotations_option
@click.option("--split", type=click.Choice(["train", "test"]), default="train", show_default=True)
@click.option(
    "--protocol",
    type=click.Choice(["posegan", "pg2"]),
    default="posegan",
    show_default=True,
    help="Test pairs: posegan = market-pairs-test.csv (12,000); pg2 = 12,800 seeded random pairs.",
)
@click.option(
    "--num",
    type=click.IntRange(min=1),
    default=12800,
    show_default=True,
    help="Pairs for --protocol pg2.",
)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="CSV to write."
)
@pass_app
def pairs(
    app: App,
    dataset: str,
    root: Path | None,
    annotations: Path | None,
    split: str,
    protocol: str,
    num: int,
    out: Path,
) -> None:
    """Write (from,to) pairs as CSV.

    Example: reidaug data pairs --root ../shared/data/market1501 --split train --out train-pairs.csv
    """
    from reidaug.data import build_dataset
    from reidaug.data.market1501 import write_pairs
    from reidaug.data.pairs import protocol_pairs, stats, train_pairs

    ds = build_dataset(dataset, root, annotations)
    ds.check_before_run()
    if split == "train":
        result = train_pairs(ds.train, ds.annotations("train"))
    else:
        result = protocol_pairs(ds, protocol, app.seed, n=num)
    write_pairs(out, result)
    s = stats(result)
    click.echo(f"wrote {s['pairs']} pairs ({s['images']} images, {s['ids']} ids) to {out}")


@data.command("make-synthetic")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to create.",
)
@click.option(
    "--ids",
    type=click.IntRange(min=2),
    default=64,
    show_default=True,
    help="Training ids (test gets as many).",
)
@click.option(
    "--seed", "seed", type=int, default=None, help="Dataset seed [default: the global --seed]."
)
@click.option("--test-pairs", type=click.IntRange(min=1), default=400, show_default=True)
@pass_app
def make_synthetic_cmd(app: App, out: Path, ids: int, seed: int | None, test_pairs: int) -> None:
    """Write the embedded procedural dataset in Market-1501 layout.

    Example: reidaug data make-synthetic --out data/synthetic --ids 64
    """
    from reidaug.data import make_synthetic

    with app.progress("drawing people") as update:
        summary = make_synthetic(
            out,
            ids=ids,
            seed=app.seed if seed is None else seed,
            test_pairs=test_pairs,
            progress=update,
        )
    imgs = summary["images"]
    click.echo(
        f"wrote {imgs['train']} train, {imgs['query']} query and {imgs['gallery']} gallery images "
        f"and {summary['test_pairs']} test pairs to {out}"
    )
