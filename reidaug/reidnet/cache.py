"""A re-ID model of a recipe trained on a dataset's real training images, cached per user.

The idp judge and the identity loss both need such a model; it is trained once (resumably,
epoch by epoch) and reused from :func:`~reidaug.reidnet.model.cache_dir`. Its batches are the
baseline arm's of ``reidaug bench-reid``, so the cached model of a seed is the bench's
baseline model of that seed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from reidaug.data import build_dataset
from reidaug.data.market1501 import Market1501
from reidaug.errors import UserError
from reidaug.reidnet import adapter
from reidaug.reidnet import model as reid_model
from reidaug.reidnet.recipe import ReidRecipe
from reidaug.reidnet.train import RealImages, real_batches, train_reid


def model_key(recipe: ReidRecipe, ds: Market1501) -> dict:
    """What makes a model trained on ``ds``'s real images: its recipe and its data."""
    return {
        "dataset": ds.name,
        **recipe.to_dict(),
        "root": str(Path(ds.root).resolve()),
        "train_images": len(ds.train),
    }


def train_real(
    recipe: ReidRecipe,
    ds: Market1501,
    seed: int,
    device: torch.device | str = "cpu",
    workers: int = 1,
    progress: Callable[..., None] | None = None,
    tag: str = "baseline",
    state_path: Path | None = None,
    key: dict | None = None,
    log: Callable[[str], None] | None = None,
):
    """Train ``recipe`` on ``ds``'s real training images alone (the baseline arm's batches)."""
    n, b = len(ds.train), recipe.batch_size
    if n < b:
        raise UserError(f"--batch-size {b} exceeds the {n} training images")
    tf_train, _ = adapter.transforms(recipe.height, recipe.width, recipe.transforms)
    return train_reid(
        recipe,
        RealImages(ds.train, tf_train),
        ds.num_train_ids,
        lambda epoch: real_batches(n, b, seed, epoch),
        n // b,
        seed=seed,
        device=device,
        workers=workers,
        progress=progress,
        tag=tag,
        state_path=state_path,
        key=key,
        log=log,
    )


def cached_model(
    recipe: ReidRecipe,
    dataset: str,
    root: str | None,
    seed: int = 1,
    device: torch.device | str = "cpu",
    workers: int = 1,
    progress: Callable[..., None] | None = None,
    log: Callable[[str], None] | None = None,
    subset: tuple[int | None, float | None, int] | None = None,
) -> Path:
    """The checkpoint of ``recipe`` trained with ``seed`` on the real training set of
    ``dataset`` at ``root``, from the user cache; trained and cached on first use.

    ``subset`` is ``(real_per_id, id_fraction, subset_seed)`` of
    :meth:`~reidaug.data.market1501.Market1501.restrict_train`: the model then sees only that
    subset (and is cached apart from the whole set's)."""
    log = log or (lambda m: None)
    ds = build_dataset(dataset, root)
    ds.check_before_run(need_annotations=False)
    kept = ds.restrict_train(*subset) if subset is not None else None
    extra = {"subset": kept["sha256"]} if kept is not None else {}
    path = reid_model.cache_path(ds.name, ds.root, {**recipe.to_dict(), "seed": seed, **extra})
    if path.is_file():
        log(f"re-ID model from the cache: {path}")
        return path
    log(f"training the re-ID model once (seed {seed}); it will be cached at {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = {**model_key(recipe, ds), "seed": seed, **extra}
    state = path.with_name(f".{path.stem}.state.pt")
    model, _ = train_real(
        recipe, ds, seed, device, workers, progress, "re-ID model", state, key, log
    )
    meta = {"height": recipe.height, "width": recipe.width}
    quality = reid_model.evaluate_model(model, ds, meta, device, workers)
    reid_model.save_trained(model, path, recipe, ds, quality)
    state.unlink(missing_ok=True)
    return path
