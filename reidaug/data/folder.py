"""A folder of the user's own person crops, read as a Market-style dataset.

Layouts (``ROOT`` is what ``--root`` names)::

    ROOT/train/, ROOT/query/, ROOT/gallery/   images, searched recursively
    ROOT/index.csv                            optional: path,pid,camid[,split]
    ROOT/poses.csv                            keypoints (``reidaug poses estimate`` writes it)

Without ``train/`` (and without a ``split`` column) every image under ``ROOT`` is one pool, split
by identity with a fixed seed: half of the identities train; of each other identity seen by two
or more cameras, one image per camera is a query and the rest the gallery.

Identities and cameras come from Market-style names (``0002_c1...``) or from ``index.csv``
(torchreid's custom-dataset convention: ``path`` relative to ``ROOT``, ``pid`` from 0, ``camid``
from 0). A CSV pid ``p`` is person ``p + 1`` inside reidaug, since Market keeps id 0 for
distractors.

Images of any size are letterboxed to 128x64 (aspect kept, edge pixels padded, never stretched)
into a cache folder named by a digest of the listing, and keypoints (given in the original
image's pixels) are mapped the same way; every command then sees the cached crops.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import posixpath
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from reidaug.atomic import atomic_path
from reidaug.config import cache_dir
from reidaug.data import keypoints as K
from reidaug.data.market1501 import JUNK_PID, Item, Market1501, parse_name
from reidaug.errors import UserError
from reidaug.lock import folder_lock

INDEX_FILE = "index.csv"
POSES_FILE = "poses.csv"
SPLITS = ("train", "query", "gallery")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
#: Smaller crops hold too little of a person to pose or re-identify; larger ones are not crops.
MIN_SIDE, MAX_SIDE = 16, 4096
#: Cameras are one digit in Market-style names.
MAX_CAMERAS = 9
#: Test pairs drawn from the gallery (at most the ordered same-id pairs there are).
TEST_PAIRS = 12000
SPLIT_SEED = 0
#: Bumped when the cached crops change for the same listing.
CACHE_VERSION = 1


@dataclass(frozen=True)
class Source:
    """One image of the user's folder: its path relative to the root, split, raw pid and
    0-based camera."""

    rel: str
    split: str
    raw_pid: int
    camid: int

    @property
    def name(self) -> str:
        """The cached crop's Market-style name, unique over the folder."""
        pid = "-1" if self.raw_pid == JUNK_PID else f"{self.raw_pid:04d}"
        digest = hashlib.sha1(self.rel.encode()).hexdigest()[:10]
        return f"{pid}_c{self.camid + 1}_{digest}.png"


def letterbox(img: Image.Image, height: int, width: int) -> tuple[np.ndarray, tuple[float, ...]]:
    """Fit ``img`` into ``height x width`` with its aspect kept, padding with its edge pixels.

    Returns:
        The ``uint8 (height, width, 3)`` crop and ``(sy, sx, oy, ox)``, the map of a point
        ``(y, x)`` of ``img`` to ``(y * sy + oy, x * sx + ox)``.
    """
    w, h = img.size
    s = min(height / h, width / w)
    nh, nw = max(1, min(height, round(h * s))), max(1, min(width, round(w * s)))
    arr = np.asarray(img.convert("RGB").resize((nw, nh), Image.BICUBIC), dtype=np.uint8)
    oy, ox = (height - nh) // 2, (width - nw) // 2
    pad = ((oy, height - nh - oy), (ox, width - nw - ox), (0, 0))
    return np.pad(arr, pad, mode="edge"), (nh / h, nw / w, float(oy), float(ox))


def map_keypoints(kps: np.ndarray, fit: tuple[float, ...], inverse: bool = False) -> np.ndarray:
    """Keypoints ``(18, 2)`` ``(y, x)`` through a :func:`letterbox` map (or back); ``-1`` stays."""
    sy, sx, oy, ox = fit
    kps = np.asarray(kps)
    out = np.full(kps.shape, K.MISSING, np.int64)
    ok = K.present(kps)
    y, x = kps[ok, 0].astype(float), kps[ok, 1].astype(float)
    if inverse:
        y, x = (y - oy) / sy, (x - ox) / sx
    else:
        y, x = y * sy + oy, x * sx + ox
    out[ok, 0], out[ok, 1] = np.round(y), np.round(x)
    out[ok] = np.maximum(out[ok], 0)  # a point on the edge must not become "missing"
    return out


def _check_rel(rel: str, where: str) -> str:
    if not rel or rel.startswith("/") or "\\" in rel:
        raise UserError(f"{where}: path {rel!r} must be relative to the folder, with '/'")
    norm = posixpath.normpath(rel)
    if norm.startswith("../") or norm == "..":
        raise UserError(f"{where}: path {rel!r} leaves the folder")
    if ":" in norm or "\n" in norm or "\r" in norm:
        raise UserError(f"{where}: path {rel!r} holds ':' or a line break; rename the file")
    return norm


def _int(value: str, column: str, where: str, lo: int, hi: int | None = None) -> int:
    try:
        v = int(value.strip())
    except ValueError:
        raise UserError(f"{where}: {column} {value!r} is not an integer") from None
    if v < lo or (hi is not None and v > hi):
        bound = f"from {lo}" if hi is None else f"in {lo}..{hi}"
        raise UserError(f"{where}: {column} {v} must be {bound}")
    return v


def read_index(path: Path) -> list[tuple[str, int, int, str | None]]:
    """Rows ``(relative path, raw pid, camid, split or None)`` of an index CSV."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise UserError(f"{path} is empty: expected the header path,pid,camid[,split]")
    header = [c.strip().lower() for c in rows[0]]
    missing = [c for c in ("path", "pid", "camid") if c not in header]
    unknown = [c for c in header if c not in ("path", "pid", "camid", "split")]
    if missing or unknown:
        what = f"no column {missing[0]!r}" if missing else f"unknown column {unknown[0]!r}"
        raise UserError(
            f"{path}:1: {what}; expected the header path,pid,camid[,split] (got {','.join(header)})"
        )
    col = {c: header.index(c) for c in header}
    out, seen = [], {}
    for n, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        where = f"{path}:{n}"
        if len(row) != len(header):
            raise UserError(f"{where}: {len(row)} fields, the header has {len(header)}")
        rel = _check_rel(row[col["path"]].strip(), where)
        if rel in seen:
            raise UserError(f"{where}: {rel} is listed twice (first at line {seen[rel]})")
        seen[rel] = n
        pid = _int(row[col["pid"]], "pid", where, 0) + 1
        cam = _int(row[col["camid"]], "camid", where, 0, MAX_CAMERAS - 1)
        split = row[col["split"]].strip() if "split" in col else None
        if split is not None and split not in SPLITS:
            raise UserError(f"{where}: split {split!r} must be one of {', '.join(SPLITS)}")
        out.append((rel, pid, cam, split))
    if not out:
        raise UserError(f"{path} lists no images")
    return out


def split_by_identity(sources: list[Source], seed: int = SPLIT_SEED) -> list[Source]:
    """One pool split by identity: half of the ids train; of each other id seen by two or more
    cameras one image per camera is a query, the rest (and ids of one camera) the gallery."""
    by_id: dict[int, list[Source]] = {}
    for s in sources:
        by_id.setdefault(s.raw_pid, []).append(s)
    ids = sorted(p for p in by_id if p != JUNK_PID)
    if len(ids) < 2:
        raise UserError(
            f"only {len(ids)} identity in the folder: a split by identity needs two or more"
        )
    rng = np.random.default_rng([seed, 29])
    test = {int(p) for p in rng.choice(ids, size=len(ids) // 2, replace=False)}
    out = []
    for pid in sorted(by_id):
        imgs = sorted(by_id[pid], key=lambda s: s.rel)
        if pid not in test and pid != JUNK_PID:
            out += [Source(s.rel, "train", s.raw_pid, s.camid) for s in imgs]
            continue
        cams = sorted({s.camid for s in imgs})
        picked: list[Source] = []
        if pid != JUNK_PID and len(cams) > 1:
            for c in cams:
                in_cam = [s for s in imgs if s.camid == c]
                picked.append(in_cam[int(rng.integers(len(in_cam)))])
        while picked:  # a query needs a gallery image from another camera to be scored
            rest = [s for s in imgs if s not in picked]
            bad = [q for q in picked if not any(g.camid != q.camid for g in rest)]
            if not bad:
                break
            picked.remove(bad[-1])
        query = {q.rel for q in picked}
        out += [
            Source(s.rel, "query" if s.rel in query else "gallery", s.raw_pid, s.camid)
            for s in imgs
        ]
    return out


class FolderDataset(Market1501):
    """The user's own crops (see the module docstring for the layout).

    Args:
        root: the folder.
        annotations: folder of ``poses.csv`` [default: ``root``].

    Example:
        >>> ds = FolderDataset("my-crops/")  # doctest: +SKIP
        >>> ds.train[0].path.name, ds.origin(ds.train[0].name)  # doctest: +SKIP
        ('0001_c1_3f2a9c0d1e.png', 'train/alice/cam1-0001.jpg')
    """

    name = "folder"
    splits = {s: s for s in SPLITS}

    def __init__(
        self, root: str | os.PathLike | None = None, annotations: str | os.PathLike | None = None
    ) -> None:
        if root is None:
            raise UserError("no root given for the folder dataset: pass --root DIR")
        super().__init__(root, annotations)
        self.image_dir = self.root
        self.annotation_dir = Path(annotations) if annotations else self.root

    # ---------------------------------------------------------------- listing
    def _listing(self) -> list[Source]:
        if not self.root.is_dir():
            what = "is a file, not a folder" if self.root.exists() else "not found"
            raise UserError(f"dataset root {what}: {self.root}")
        for market in (Market1501.release_dir, Market1501.splits["train"]):
            if (self.root / market).is_dir():  # e.g. $REIDAUG_DATA taken for a folder's root
                raise UserError(
                    f"{self.root} is a Market-1501 root (it holds {market}/): read it with "
                    "--dataset market1501, or pass --root with your own folder"
                )
        index = self.root / INDEX_FILE
        dirs = [d for d in SPLITS if (self.root / d).is_dir()]
        has_dirs = bool(dirs)
        if has_dirs and len(dirs) < len(SPLITS):
            absent = next(d for d in SPLITS if d not in dirs)
            raise UserError(
                f"missing {absent} folder: {self.root / absent} (a folder dataset has train/, "
                "query/ and gallery/, or none of them and one pool split by identity)"
            )
        if index.is_file():
            rows = read_index(index)
            for rel, *_ in rows:
                if not (self.root / rel).is_file():
                    raise UserError(f"{index}: image not found: {rel}")
            splits = [self._split_of(rel, split) for rel, _, _, split in rows]
            if len({s is None for s in splits}) > 1:
                raise UserError(
                    f"{index}: some images lie in train/, query/ or gallery/ (or name a split) "
                    "and some do not; give every image a split or none"
                )
            sources = [
                Source(rel, split or "", pid, cam)
                for (rel, pid, cam, _), split in zip(rows, splits, strict=True)
            ]
        else:
            sources = []
            for p in self._images(self.root):
                rel = p.relative_to(self.root).as_posix()
                _check_rel(rel, str(self.root))
                try:
                    pid, cam = parse_name(p.name)
                except UserError as e:
                    raise UserError(f"{e}; or list identities in {index}") from None
                if cam > MAX_CAMERAS:
                    raise UserError(f"camera {cam} in {rel}: Market-style names allow c1..c9")
                top = rel.split("/")[0]
                sources.append(Source(rel, top if top in SPLITS else "", pid, cam - 1))
            if has_dirs:
                sources = [s for s in sources if s.split]
        if not sources:
            raise UserError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {self.root}")
        if not sources[0].split:
            sources = split_by_identity(sources)
        self._check_splits(sources)
        return sorted(sources, key=lambda s: s.rel)

    @staticmethod
    def _split_of(rel: str, given: str | None) -> str | None:
        if given is not None:
            return given
        top = rel.split("/")[0]
        return top if top in SPLITS else None

    @staticmethod
    def _images(root: Path) -> list[Path]:
        out = []
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            out += [
                Path(dirpath) / f
                for f in sorted(filenames)
                if not f.startswith(".") and f.lower().endswith(IMAGE_SUFFIXES)
            ]
        return out

    def _check_splits(self, sources: list[Source]) -> None:
        by_split: dict[str, list[Source]] = {s: [] for s in SPLITS}
        for s in sources:
            by_split[s.split].append(s)
        for split, items in by_split.items():
            if not items:
                raise UserError(f"the {split} split of {self.root} holds no images")
        if any(s.raw_pid == JUNK_PID for s in by_split["train"]):
            raise UserError("junk images (id -1) belong in the gallery, not in train")
        gallery = {s.raw_pid for s in by_split["gallery"]}
        lonely = sorted({s.raw_pid for s in by_split["query"]} - gallery - {JUNK_PID})
        if lonely:
            first = next(s.rel for s in by_split["query"] if s.raw_pid == lonely[0])
            raise UserError(
                f"query {first} shows a person with no gallery image ({len(lonely)} such ids): "
                "every query needs a match to be scored"
            )

    @cached_property
    def sources(self) -> list[Source]:
        """Every image of the folder, sorted by relative path."""
        return self._listing()

    def digest(self) -> str:
        """What identifies the folder's content: paths, ids, splits, sizes and times."""
        h = hashlib.sha256(f"folder-cache-v{CACHE_VERSION}".encode())
        for s in self.sources:
            try:
                st = (self.root / s.rel).stat()
            except OSError as e:  # a symlink loop or a link to nowhere
                from reidaug.data.pairs import image_error

                raise image_error(self.root / s.rel, e) from None
            h.update(f"{s.rel}\0{s.split}\0{s.raw_pid}\0{s.camid}\0{st.st_size}\0".encode())
            h.update(f"{st.st_mtime_ns}\n".encode())
        return h.hexdigest()[:16]

    # ---------------------------------------------------------------- the 128x64 crops
    @cached_property
    def crops(self) -> Path:
        """The folder of cached 128x64 crops (built on first use)."""
        base = cache_dir() / "folders"
        folder = base / self.digest()
        if not (folder / "fits.json").is_file():
            with folder_lock(base, f"crops-{folder.name}"):
                if not (folder / "fits.json").is_file():  # built while this one waited
                    self._build_crops(folder)
        return folder

    def _build_crops(self, folder: Path) -> None:
        fits = {}
        with atomic_path(folder, what=f"the cached crops of {self.root}") as tmp:
            tmp.mkdir(parents=True)
            for s in self.sources:
                crop, fit = self._read(s.rel)
                Image.fromarray(crop).save(tmp / s.name)
                fits[s.rel] = fit
            with open(tmp / "fits.json", "w", encoding="utf-8") as f:
                json.dump({"root": str(self.root.resolve()), "fits": fits}, f)

    def _read(self, rel: str) -> tuple[np.ndarray, tuple[float, ...]]:
        path = self.root / rel
        try:
            with Image.open(path) as im:
                w, h = im.size
                if min(w, h) < MIN_SIDE or max(w, h) > MAX_SIDE:
                    raise UserError(
                        f"{path} is {w}x{h} pixels: crops must be {MIN_SIDE} to {MAX_SIDE} "
                        "pixels a side"
                    )
                im.load()
                return letterbox(im, self.height, self.width)
        except UserError:
            raise
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            from reidaug.data.pairs import image_error

            raise image_error(path, e) from None

    @cached_property
    def fits(self) -> dict[str, tuple[float, ...]]:
        """Per relative path, its :func:`letterbox` map."""
        with open(self.crops / "fits.json", encoding="utf-8") as f:
            return {k: tuple(v) for k, v in json.load(f)["fits"].items()}

    def origin(self, name: str) -> str:
        """The user's file behind a crop name (its path relative to the root)."""
        return self._by_name[name].rel

    @cached_property
    def _by_name(self) -> dict[str, Source]:
        return {s.name: s for s in self.sources}

    # ---------------------------------------------------------------- Market's interface
    def check_before_run(self, need_annotations: bool = True) -> None:
        """Read the listing (raising a ``UserError`` for its first problem) and, when poses
        are needed, refuse a folder without a pose file, saying what to run."""
        _ = self.sources
        if need_annotations and not self.annotation_path("train").is_file():
            raise UserError(
                f"no pose file {self.annotation_path('train')}: run `reidaug poses estimate "
                f"--dataset folder --root {self.root}` first"
            )

    def split_dir(self, split: str) -> Path:
        if split not in self.splits:
            raise UserError(f'unknown split "{split}"; expected one of: {", ".join(self.splits)}')
        return self.crops

    def _scan(self, split: str) -> list[Item]:
        crops = self.crops
        items = [
            Item(crops / s.name, s.raw_pid, s.camid, s.raw_pid)
            for s in self.sources
            if s.split == split
        ]
        return sorted(items, key=lambda it: it.name)

    def annotation_path(self, split: str) -> Path:
        return self.annotation_dir / POSES_FILE

    def annotations(self, split: str) -> dict[str, np.ndarray]:
        """Keypoints by crop name for ``train``, ``query`` or ``gallery``, in the 128x64 frame."""
        key = "gallery" if split in ("gallery", "gallery_all", "test") else split
        cache = self.__dict__.setdefault("_ann_cache", {})
        if key not in cache:
            path = self.annotation_path(key)
            if not path.is_file():
                raise UserError(
                    f"no pose file {path}: run `reidaug poses estimate --dataset folder "
                    f"--root {self.root}`"
                )
            raw, fits = self._raw_poses, self.fits
            cache[key] = {
                s.name: map_keypoints(raw[s.rel], fits[s.rel])
                for s in self.sources
                if s.split == key and s.rel in raw
            }
        return cache[key]

    @cached_property
    def _raw_poses(self) -> dict[str, np.ndarray]:
        """The pose file as written: by relative path, in the original images' pixels."""
        return K.read_annotations(self.annotation_path("train"))

    def test_pairs(self) -> list[tuple[str, str]]:
        """Seeded same-id gallery pairs with valid poses (the PG2 protocol's draw)."""
        from reidaug.data.pairs import pg2_test_pairs, valid_pose_groups

        anns = self.annotations("gallery")
        groups = valid_pose_groups(self.items("gallery"), anns).values()
        n = min(TEST_PAIRS, sum(len(g) * (len(g) - 1) for g in groups))
        return pg2_test_pairs(self.items("gallery"), anns, n=max(n, 1), seed=0)

    def require_pairs(self) -> None:
        """Refuse a training split where some identity has a single image (no pair to learn
        a pose change from)."""
        counts: dict[int, list[str]] = {}
        for it in self.train:  # the kept subset, if any
            counts.setdefault(it.raw_pid, []).append(self.origin(it.name))
        single = sorted(p for p, rels in counts.items() if len(rels) == 1)
        if single:
            raise UserError(
                f"{len(single)} training identities have one image (first: "
                f"{counts[single[0]][0]}): a pose generator learns from pairs of images of one "
                "person; add images or leave them out"
            )


def write_folder_poses(
    ds: FolderDataset, keypoints: dict[str, np.ndarray], out: str | os.PathLike | None = None
) -> Path:
    """Write keypoints found on the 128x64 crops (by crop name) as ``poses.csv`` in the original
    images' pixels, keyed by relative path; returns the file."""
    path = Path(out) if out is not None else ds.annotation_path("train")
    fits = ds.fits
    rows = {
        s.rel: map_keypoints(keypoints[s.name], fits[s.rel], inverse=True)
        for s in ds.sources
        if s.name in keypoints
    }
    K.write_annotations(path, rows)
    return path
