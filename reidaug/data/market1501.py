"""Market-1501 reader: splits, ids, cameras, pose annotations and the standard test pairs.

The expected layout is the one in ``shared/data/market1501``::

    ROOT/Market-1501-v15.09.15/{bounding_box_train,bounding_box_test,query}/*.jpg
    ROOT/annotations/market-annotation-{train,test}.csv, market-pairs-test.csv

``ROOT`` may also hold the split folders directly (the embedded synthetic dataset does so).
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from reidaug.atomic import atomic_path
from reidaug.data import keypoints as K
from reidaug.errors import UserError

_NAME = re.compile(r"^(-1|\d+)_c(\d)")
JUNK_PID = -1
DISTRACTOR_PID = 0


@dataclass(frozen=True)
class Item:
    """One image of a split.

    Attributes:
        path: the image file.
        pid: person id; relabelled to ``0..num_ids-1`` in the train split, raw elsewhere
            (``0`` is a distractor, ``-1`` junk).
        camid: camera index, 0-based.
        raw_pid: the id in the file name.
    """

    path: Path
    pid: int
    camid: int
    raw_pid: int

    @property
    def name(self) -> str:
        return self.path.name


def parse_name(name: str) -> tuple[int, int]:
    """Return ``(pid, camid 1-based)`` from a Market-style file name, ``*.jpg.jpg`` included."""
    m = _NAME.search(name)
    if m is None:
        raise UserError(
            f"cannot parse person id and camera from image name: {name} (expected Market's "
            "PPPP_cC..., e.g. 0002_c1s1_000451_03.jpg)"
        )
    if int(m.group(2)) == 0:
        raise UserError(f"camera 0 in image name {name}: Market's cameras are numbered from 1")
    return int(m.group(1)), int(m.group(2))


class Market1501:
    """Market-1501 (751 training ids, 6 cameras, 128x64 crops) with PG2-family pose annotations.

    Args:
        root: folder holding ``Market-1501-v15.09.15/`` (or the split folders) and
            ``annotations/``. Defaults to ``$REIDAUG_DATA``.
        annotations: folder of the annotation CSVs; defaults to ``ROOT/annotations``.

    Example:
        >>> ds = Market1501("../shared/data/market1501")  # doctest: +SKIP
        >>> len(ds.train), ds.num_train_ids  # doctest: +SKIP
        (12936, 751)

        The embedded dataset has the same layout and API:

        >>> import tempfile
        >>> from reidaug.data import SyntheticMarket, make_synthetic
        >>> root = tempfile.mkdtemp() + "/market"
        >>> _ = make_synthetic(root, ids=4, test_pairs=8)
        >>> ds = SyntheticMarket(root)
        >>> ds.num_train_ids, ds.train[0].path.suffix, len(ds.test_pairs())
        (4, '.jpg', 8)
    """

    name = "market1501"
    release_dir = "Market-1501-v15.09.15"
    splits = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
    annotation_files = {
        "train": "market-annotation-train.csv",
        "gallery": "market-annotation-test.csv",
    }
    pairs_file = "market-pairs-test.csv"
    height, width = 128, 64

    def __init__(
        self, root: str | os.PathLike | None = None, annotations: str | os.PathLike | None = None
    ) -> None:
        if root is None:
            root = os.environ.get("REIDAUG_DATA")
            if not root:
                raise UserError(
                    f"no dataset root given for {self.name}: pass --root or set REIDAUG_DATA"
                )
        self.root = Path(root).expanduser()
        release = self.root / self.release_dir
        self.image_dir = release if release.is_dir() else self.root
        self.annotation_dir = Path(annotations) if annotations else self.root / "annotations"
        #: what :meth:`restrict_train` kept, or ``None`` for the whole training set
        self.subset: dict | None = None
        #: the validation split of :meth:`hold_out`, or ``None`` (the real test split)
        self.validation: dict | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r})"

    # ---------------------------------------------------------------- layout checks
    def split_dir(self, split: str) -> Path:
        if split not in self.splits:
            raise UserError(f'unknown split "{split}"; expected one of: {", ".join(self.splits)}')
        return self.image_dir / self.splits[split]

    def check_before_run(self, need_annotations: bool = True) -> None:
        """Raise a ``UserError`` naming the first missing folder or file, before any parsing."""
        if not self.root.is_dir():
            raise UserError(f"dataset root not found: {self.root}")
        for split in self.splits:
            d = self.split_dir(split)
            if not d.is_dir():
                raise UserError(f"missing {split} folder: {d}")
        if need_annotations:
            if not self.annotation_dir.is_dir():
                raise UserError(f"missing annotations folder: {self.annotation_dir}")
            for fname in (*self.annotation_files.values(), self.pairs_file):
                if not (self.annotation_dir / fname).is_file():
                    raise UserError(f"missing annotation file: {self.annotation_dir / fname}")

    # ---------------------------------------------------------------- splits
    def _scan(self, split: str) -> list[Item]:
        d = self.split_dir(split)
        if not d.is_dir():
            raise UserError(f"missing {split} folder: {d}")
        files = sorted(p for p in d.iterdir() if p.name.lower().endswith(".jpg"))
        if not files:
            raise UserError(f"no .jpg images in {split} folder: {d}")
        items = []
        for p in files:
            pid, cam = parse_name(p.name)
            items.append(Item(p, pid, cam - 1, pid))
        return items

    @cached_property
    def train(self) -> list[Item]:
        """Training images; pids relabelled to ``0..num_train_ids-1`` in sorted raw-id order."""
        items = self._scan("train")
        label = {pid: i for i, pid in enumerate(sorted({it.raw_pid for it in items}))}
        return [Item(it.path, label[it.raw_pid], it.camid, it.raw_pid) for it in items]

    @cached_property
    def query(self) -> list[Item]:
        return [it for it in self._scan("query") if it.pid != JUNK_PID]

    @cached_property
    def _gallery_all(self) -> list[Item]:
        return self._scan("gallery")

    @property
    def gallery(self) -> list[Item]:
        """Gallery images as torchreid keeps them: junk (``-1``) dropped, distractors (``0``)
        kept."""
        return [it for it in self._gallery_all if it.pid != JUNK_PID]

    @property
    def gallery_junk(self) -> list[Item]:
        return [it for it in self._gallery_all if it.pid == JUNK_PID]

    def restrict_train(
        self, real_per_id: int | None = None, id_fraction: float | None = None, seed: int = 0
    ) -> dict | None:
        """Keep a seeded subset of the training set: a share ``id_fraction`` of the identities,
        then ``real_per_id`` images of each (all of an identity that has fewer); labels are
        renumbered over the kept identities. The same arguments give the same subset.

        Returns:
            What identifies the subset (its arguments, size and a digest of its image names),
            or ``None`` when both are ``None`` (the whole training set is kept).
        """
        if real_per_id is None and id_fraction is None:
            return None
        if real_per_id is not None and real_per_id < 1:
            raise UserError(f"--real-per-id must be at least 1, got {real_per_id}")
        if id_fraction is not None and not 0 < id_fraction <= 1:
            raise UserError(f"--id-fraction must lie in (0, 1], got {id_fraction}")
        by_id: dict[int, list[Item]] = {}
        for it in self.train:
            by_id.setdefault(it.raw_pid, []).append(it)
        ids = sorted(by_id)
        rng = np.random.default_rng([seed, 17])
        if id_fraction is not None:
            n = max(1, round(len(ids) * id_fraction))
            ids = sorted(int(i) for i in rng.choice(ids, size=n, replace=False))
        keep: list[Item] = []
        for label, pid in enumerate(ids):
            imgs = by_id[pid]
            if real_per_id is not None and len(imgs) > real_per_id:
                pick = sorted(rng.choice(len(imgs), size=real_per_id, replace=False).tolist())
                imgs = [imgs[i] for i in pick]
            keep += [Item(it.path, label, it.camid, it.raw_pid) for it in imgs]
        keep.sort(key=lambda it: it.path.name)
        self.__dict__["train"] = keep
        self.subset = {
            "real_per_id": real_per_id,
            "id_fraction": id_fraction,
            "seed": seed,
            "images": len(keep),
            "ids": len(ids),
            "sha256": self.train_digest(),
        }
        return self.subset

    def hold_out(self, ids: int, seed: int = 0) -> dict:
        """Replace the test split by a validation split carved from the training identities:
        ``ids`` seeded identities seen by at least two cameras leave the training set; of each,
        one image per camera becomes a query and the rest the gallery (Market's protocol, so
        same-camera matches are ignored). Training labels are renumbered over the rest. Call it
        before :meth:`restrict_train`; the test images are never read afterwards.

        Returns:
            What identifies the split (its arguments, sizes and a digest of its image names).
        """
        if self.subset is not None:
            raise ValueError("hold_out() comes before restrict_train()")
        by_id: dict[int, list[Item]] = {}
        for it in self.train:
            by_id.setdefault(it.raw_pid, []).append(it)
        eligible = sorted(p for p, imgs in by_id.items() if len({i.camid for i in imgs}) > 1)
        if ids < 1 or ids >= len(by_id) or ids > len(eligible):
            raise UserError(
                f"--val-ids must lie in [1, {min(len(eligible), len(by_id) - 1)}] (identities "
                f"seen by two cameras, leaving some to train on), got {ids}"
            )
        rng = np.random.default_rng([seed, 23])
        held = sorted(int(p) for p in rng.choice(eligible, size=ids, replace=False))
        query, gallery = [], []
        for pid in held:
            imgs = by_id[pid]
            for cam in sorted({i.camid for i in imgs}):
                in_cam = [i for i in imgs if i.camid == cam]
                q = in_cam[int(rng.integers(len(in_cam)))]
                query.append(q)
                gallery += [i for i in in_cam if i is not q]
        rest = sorted(set(by_id) - set(held))
        label = {pid: i for i, pid in enumerate(rest)}
        train = [
            Item(it.path, label[it.raw_pid], it.camid, it.raw_pid) for p in rest for it in by_id[p]
        ]
        train.sort(key=lambda it: it.path.name)

        def raw(items: list[Item]) -> list[Item]:  # the test splits keep raw pids
            return [Item(i.path, i.raw_pid, i.camid, i.raw_pid) for i in items]

        self.__dict__.update(train=train, query=raw(query), _gallery_all=raw(gallery))
        names = "\n".join(sorted(i.path.name for i in query + gallery))
        self.validation = {
            "ids": ids,
            "seed": seed,
            "query": len(query),
            "gallery": len(gallery),
            "sha256": hashlib.sha256(names.encode()).hexdigest()[:16],
        }
        return self.validation

    def train_digest(self) -> str:
        """What identifies the training split (or subset): a digest of its image names."""
        return _names_digest(self.train)

    def require_pairs(self) -> None:
        """Refuse a training set a pose generator cannot learn from; Market's splits always
        pair up (its identities with one valid pose simply add no pairs)."""

    def origin(self, name: str) -> str:
        """The user's file behind an image name, for messages (Market's names are its files)."""
        return name

    def full_train_digest(self) -> str:
        """:meth:`train_digest` of the whole training split, whatever subset is kept."""
        return _names_digest(self._scan("train"))

    @property
    def num_train_ids(self) -> int:
        return len({it.pid for it in self.train})

    def items(self, split: str) -> list[Item]:
        """Images of ``train``, ``query`` or ``gallery`` (``gallery_all`` keeps junk too)."""
        if split == "gallery_all":
            return self._gallery_all
        self.split_dir(split)
        return getattr(self, split)

    # ---------------------------------------------------------------- annotations
    def annotation_path(self, split: str) -> Path:
        key = "gallery" if split in ("gallery", "gallery_all", "test") else split
        if key not in self.annotation_files:
            raise UserError(f"{self.name} has no pose annotations for split '{split}'")
        return self.annotation_dir / self.annotation_files[key]

    def annotations(self, split: str) -> dict[str, np.ndarray]:
        """Keypoints by image name for ``train`` or ``gallery`` (``test``)."""
        key = "gallery" if split in ("gallery", "gallery_all", "test") else split
        cache = self.__dict__.setdefault("_ann_cache", {})
        if key not in cache:
            cache[key] = K.read_annotations(self.annotation_path(key))
        return cache[key]

    def test_pairs(self) -> list[tuple[str, str]]:
        """The standard 12,000 ``(from, to)`` test pairs of ``market-pairs-test.csv``."""
        return read_pairs(self.annotation_dir / self.pairs_file)


def _names_digest(items: list[Item]) -> str:
    names = "\n".join(sorted(it.path.name for it in items))
    return hashlib.sha256(names.encode()).hexdigest()[:16]


def read_pairs(path: str | os.PathLike) -> list[tuple[str, str]]:
    """Read a ``from,to`` pairs CSV."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"pairs file not found: {path}")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows or [c.strip() for c in rows[0]] != ["from", "to"]:
        raise UserError(f"malformed pairs file {path}:1: expected header 'from,to'")
    out = []
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != 2 or not row[0] or not row[1]:
            raise UserError(f"malformed pairs row at {path}:{i}: expected 'from,to'")
        out.append((row[0], row[1]))
    return out


def write_pairs(path: str | os.PathLike, pairs: list[tuple[str, str]]) -> None:
    """Write a ``from,to`` pairs CSV atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["from", "to"])
        w.writerows(pairs)
