"""A torchreid dataset of real images plus reidaug's synthetic ones, for users who keep their own
torchreid training scripts (``ImageDataManager`` and ``Engine``)."""

from __future__ import annotations

from pathlib import Path

from reidaug.data import build_dataset
from reidaug.data.market1501 import parse_name
from reidaug.errors import UserError
from reidaug.reidnet import adapter


def register_torchreid(
    name: str,
    root: str | Path,
    synthetic: str | Path | None = None,
    dataset: str = "market1501",
    real_per_id: int | None = None,
    id_fraction: float | None = None,
    subset_seed: int = 0,
) -> dict[str, int]:
    """Register torchreid image dataset ``name``: the real training images of ``dataset`` at
    ``root`` (or the seeded subset of ``real_per_id`` / ``id_fraction``, as ``bench-reid``
    draws it) plus every image of ``synthetic``, a folder written by ``reidaug export``; the
    query and gallery are the dataset's own.

    A synthetic image takes the training label of its source identity (from its file name),
    so real and synthetic images of one person share a class; one whose identity is not in
    the training set is refused with an error naming it.

    Returns:
        Counts: ``real``, ``synthetic``, ``ids``, ``query``, ``gallery``.

    Example (see ``docs/reid-bench.md`` for a whole torchreid script)::

        register_torchreid("market_aug", "data/market1501", "synthetic-market/")
        import torchreid.reid as torchreid
        dm = torchreid.data.ImageDataManager(sources="market_aug", height=128, width=64)
    """
    ds = build_dataset(dataset, str(root))
    ds.check_before_run(need_annotations=False)
    if real_per_id is not None or id_fraction is not None:
        ds.restrict_train(real_per_id, id_fraction, subset_seed)
    train = [(str(it.path), it.pid, it.camid) for it in ds.train]
    label = {it.raw_pid: it.pid for it in ds.train}
    extra = []
    if synthetic is not None:
        folder = Path(synthetic)
        folder = (
            folder / "bounding_box_train" if (folder / "bounding_box_train").is_dir() else folder
        )
        files = sorted(folder.glob("*.jpg"))
        if not files:
            raise UserError(
                f"no synthetic images (*.jpg) in {folder}: write them with reidaug export"
            )
        for f in files:
            pid, cam = parse_name(f.name)
            if pid not in label:
                raise UserError(
                    f"synthetic image {f} shows identity {pid}, which is not in the training set"
                )
            extra.append((str(f), label[pid], cam - 1))
    query = [(str(it.path), it.pid, it.camid) for it in ds.query]
    gallery = [(str(it.path), it.pid, it.camid) for it in ds.gallery]
    adapter.register_dataset(name, train + extra, query, gallery)
    return {
        "real": len(train),
        "synthetic": len(extra),
        "ids": ds.num_train_ids,
        "query": len(query),
        "gallery": len(gallery),
    }
