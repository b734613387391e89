"""Dataset validation: layout, counts, annotation coverage and decodability."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from reidaug.data import keypoints as K
from reidaug.data.market1501 import Market1501
from reidaug.data.pairs import load_image, train_pairs, valid_pose_groups


@dataclass
class SplitReport:
    split: str
    images: int
    ids: int
    cameras: int
    annotated: int | None = None
    all_missing: int | None = None
    valid_pose: int | None = None
    valid_ids: int | None = None


@dataclass
class DatasetReport:
    dataset: str
    root: str
    splits: list[SplitReport] = field(default_factory=list)
    junk_images: int = 0
    train_pairs: int = 0
    test_pairs: int = 0
    decoded: int = 0
    #: counted problems that do not stop the pipeline (poses outside the image, pairs naming
    #: images that do not exist), one line each
    warnings: list[str] = field(default_factory=list)


def _outside(kps, height: int, width: int) -> bool:
    kps = np.asarray(kps)
    p = K.present(kps)
    return bool(
        (p & ((kps[..., 0] >= height) | (kps[..., 1] >= width))).any()
        or ((kps < 0) & (kps != -1)).any()
    )


def check_dataset(
    ds: Market1501, decode: bool = True, progress: Callable[[int, int], None] | None = None
) -> DatasetReport:
    """Validate a dataset and count what the pipeline will see.

    Args:
        ds: the dataset.
        decode: decode every image (a corrupt JPEG raises a ``UserError`` naming it).
        progress: called as ``progress(done, total)`` while decoding.

    Returns:
        A ``DatasetReport``; raises ``UserError`` naming the first missing folder, file or
        unreadable image.

    Example:
        >>> report = check_dataset(Market1501("../shared/data/market1501"))  # doctest: +SKIP
        >>> report.train_pairs  # doctest: +SKIP
        263632
    """
    ds.check_before_run()
    rep = DatasetReport(ds.name, str(ds.root))
    anns = {"train": ds.annotations("train"), "gallery": ds.annotations("gallery")}
    for split in ("train", "query", "gallery"):
        items = ds.items(split)
        r = SplitReport(
            split, len(items), len({i.pid for i in items}), len({i.camid for i in items})
        )
        if split in anns:
            a = anns[split]
            scope = ds.items("gallery_all") if split == "gallery" else items
            r.annotated = sum(1 for i in scope if i.name in a)
            r.all_missing = sum(1 for i in scope if i.name in a and not K.present(a[i.name]).any())
            groups = valid_pose_groups(scope, a)
            r.valid_pose = sum(len(g) for g in groups.values())
            r.valid_ids = len(groups)
        rep.splits.append(r)
    for split, a in anns.items():
        scope = ds.items("gallery_all") if split == "gallery" else ds.items(split)
        people = [i for i in scope if i.raw_pid >= 0]
        unlisted = [ds.origin(i.name) for i in people if i.name not in a]
        partial = [
            ds.origin(i.name)
            for i in people
            if i.name in a and K.present(a[i.name]).any() and not K.is_valid_pose(a[i.name])
        ]
        for names, what in (
            (unlisted, "have no row in the pose file"),
            (partial, "have a pose without both shoulders and hips (unused in pairs)"),
        ):
            if names:
                shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
                rep.warnings.append(f"{len(names)} {split} images {what}: {shown}")
    rep.junk_images = len(ds.gallery_junk)
    rep.train_pairs = len(train_pairs(ds.train, anns["train"]))
    tests = ds.test_pairs()
    rep.test_pairs = len(tests)
    for split, a in anns.items():
        outside = [n for n, kps in a.items() if _outside(kps, ds.height, ds.width)]
        if outside:
            rep.warnings.append(
                f"{len(outside)} {split} poses have keypoints outside the "
                f"{ds.height}x{ds.width} image (first: {outside[0]})"
            )
    names = {i.name for i in ds.items("gallery_all")}  # both ends come from the gallery folder
    missing = [f"{a},{b}" for a, b in tests if a not in names or b not in names]
    if missing:
        rep.warnings.append(
            f"{len(missing)} of {len(tests)} test pairs name images that do not "
            f"exist (first: {missing[0]})"
        )
    if decode:
        everything = [*ds.train, *ds.query, *ds.items("gallery_all")]
        for n, it in enumerate(everything, start=1):
            load_image(it.path, ds.height, ds.width)
            if progress:
                progress(n, len(everything))
        rep.decoded = len(everything)
    return rep
