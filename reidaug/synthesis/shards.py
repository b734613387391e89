"""HDF5 shards of generated images: schema, atomic writing, manifest, reading and export.

Schema of ``shard-NNNNN.h5`` (plain h5py reads it)::

    images            uint8 (N, 128, 64, 3), one image per chunk, gzip-compressed
    pid               int64 (N,)   the source's person id as in its file name
    label             int64 (N,)   the source's training label (0..num_train_ids-1)
    camid             int64 (N,)   the source's camera, 0-based
    index             int64 (N,)   global image index of the job (source * poses + k)
    source_name       str   (N,)   the condition image
    target_name       str   (N,)   the pose donor
    target_keypoints  int16 (N, 18, 2)  (y, x), -1 missing
    attrs: reidaug_version, model, checkpoint_sha256, config (JSON), command, created, dataset
           (whose people), generator_dataset (what the generator was trained on), shard_index,
           num_images; config's job names the people's dataset and its digest when the two differ
"""

from __future__ import annotations

import bisect
import io
import json
import os
import re
import zlib
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from reidaug.atomic import atomic_path, write_json
from reidaug.errors import UserError
from reidaug.lock import folder_lock
from reidaug.weights import file_sha256

SHARD_PATTERN = "shard-{:05d}.h5"
MANIFEST = "manifest.json"
STR = h5py.string_dtype("utf-8")


def shard_name(i: int) -> str:
    return SHARD_PATTERN.format(i)


def write_shard(path: Path, data: dict[str, np.ndarray], attrs: dict[str, object]) -> None:
    """Write one shard to a sibling temp file and rename it into place.

    On any error (a full disk included) the temp file is removed and a ``UserError`` raised;
    finished shards are never touched.
    """
    n = len(data["images"])
    buf = io.BytesIO()  # HDF5 is built in memory: its library never meets a full disk
    with h5py.File(buf, "w", libver="latest", track_order=True) as f:
        # one image per chunk: random access decompresses only the image asked for
        f.create_dataset(
            "images",
            data=data["images"],
            dtype=np.uint8,
            chunks=(1, *data["images"].shape[1:]),
            compression="gzip",
            compression_opts=4,
            track_times=False,
        )
        for key, dtype in (
            ("pid", np.int64),
            ("label", np.int64),
            ("camid", np.int64),
            ("index", np.int64),
        ):
            f.create_dataset(key, data=np.asarray(data[key], dtype=dtype), track_times=False)
        for key in ("source_name", "target_name"):
            f.create_dataset(
                key, data=np.asarray(data[key], dtype=object), dtype=STR, track_times=False
            )
        f.create_dataset(
            "target_keypoints",
            data=np.asarray(data["target_keypoints"], dtype=np.int16),
            track_times=False,
        )
        for k, v in attrs.items():
            f.attrs[k] = v
        f.attrs["num_images"] = n
    with atomic_path(path, what=path.name, kept="finished shards are kept") as tmp:
        _write_file(tmp, buf.getbuffer())


def _write_file(path: Path, data: memoryview) -> None:
    with open(path, "wb") as out:
        out.write(data)


def read_manifest(folder: Path) -> dict:
    p = folder / MANIFEST
    if not p.is_file():
        return {}
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError:
        raise UserError(f"corrupt manifest: {p}") from None


def write_manifest(folder: Path, job: dict, total_shards: int, fresh: tuple[str, ...] = ()) -> dict:
    """Rebuild ``manifest.json`` from the finished shards on disk (idempotent across processes);
    the shards named in ``fresh`` were just written and are digested again."""
    old = {s["file"]: s for s in read_manifest(folder).get("shards", [])}
    shards = []
    for i in range(total_shards):
        p = folder / shard_name(i)
        if not p.is_file():
            continue
        entry = old.get(p.name)
        if entry is None or p.name in fresh or entry.get("bytes") != p.stat().st_size:
            with h5py.File(p, "r") as f:
                n = int(f.attrs["num_images"])
            entry = {
                "file": p.name,
                "images": n,
                "sha256": file_sha256(p),
                "bytes": p.stat().st_size,
            }
        shards.append(entry)
    manifest = {
        **job,
        "total_shards": total_shards,
        "complete": len(shards) == total_shards,
        "shards": shards,
    }
    write_json(folder / MANIFEST, manifest)
    return manifest


def verify(folder: str | os.PathLike, files: list[Path]) -> None:
    """Check ``files`` against the manifest's sizes and SHA-256 digests; the first shard that
    differs (truncated, bit-flipped) is a ``UserError`` that names it. Shards the manifest does
    not list (a job without one) are not checked."""
    listed = {s["file"]: s for s in read_manifest(Path(folder)).get("shards", [])}
    for p in files:
        entry = listed.get(p.name)
        if entry is None:
            continue
        size = p.stat().st_size
        if entry.get("bytes") not in (None, size):
            raise UserError(
                f"shard {p} is {size} bytes, the manifest says {entry['bytes']}: "
                "it is truncated or was replaced; synthesize it again"
            )
        if entry.get("sha256") and file_sha256(p) != entry["sha256"]:
            raise UserError(
                f"shard {p} does not match its SHA-256 in the manifest: it is "
                "corrupt; synthesize it again"
            )


SHARD_NAME = re.compile(r"shard-\d{5,}\.h5")


def check_contained(f: h5py.File, p: Path) -> None:
    """Refuse a shard whose data lives outside its own file: external links, external storage
    or virtual datasets would make a reader read another file's bytes (a shard is untrusted
    input)."""
    for name in f:
        link = f.get(name, getlink=True)
        obj = f[name] if isinstance(link, h5py.HardLink) else None
        if obj is None or (
            isinstance(obj, h5py.Dataset) and (obj.external is not None or obj.is_virtual)
        ):
            raise UserError(f"shard {p} uses external storage; refusing to read it")


def _open(p: Path) -> h5py.File:
    try:
        return h5py.File(p, "r")
    except OSError as e:
        raise UserError(f"shard {p} cannot be read ({str(e).splitlines()[0]})") from None


def list_shards(folder: str | os.PathLike) -> list[Path]:
    """The finished shard files of a folder (from the manifest, else by name)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"shard folder not found: {folder}")
    man = read_manifest(folder)
    for s in man.get("shards", []):
        name = s.get("file") if isinstance(s, dict) else None
        if not isinstance(name, str) or not SHARD_NAME.fullmatch(name):
            raise UserError(
                f"{folder / MANIFEST} lists {name!r}, which is not a shard file of that folder"
            )
    files = [folder / s["file"] for s in man.get("shards", [])] or sorted(folder.glob("shard-*.h5"))
    files = [f for f in files if f.is_file()]
    if not files:
        raise UserError(f"no shards in {folder}")
    return files


class ShardDataset(Dataset):
    """A torch ``Dataset`` over a folder of shards; files open lazily, once per worker process.

    Items are dicts with ``image`` (``uint8 (H, W, 3)`` tensor, or ``transform(PIL image)``),
    ``pid``, ``label``, ``camid`` and ``source``.

    Example:
        >>> ds = ShardDataset("shards/")  # doctest: +SKIP
        >>> ds[0]["image"].shape  # doctest: +SKIP
        torch.Size([128, 64, 3])
    """

    def __init__(
        self, folder: str | os.PathLike, transform: Callable | None = None, check: bool = True
    ) -> None:
        self.files = list_shards(folder)
        if check:  # every shard against the manifest's SHA-256, before anything reads it
            verify(folder, self.files)
        self.transform = transform
        counts, self.attrs, meta = [], [], []
        for p in self.files:
            with _open(p) as f:
                check_contained(f, p)
                counts.append(int(f.attrs["num_images"]))
                self.attrs.append(dict(f.attrs))
                meta.append(
                    {k: f[k][()] for k in ("pid", "label", "camid")}
                    | {"source": f["source_name"].asstr()[()]}
                )
        self.offsets = np.cumsum([0, *counts]).tolist()
        # the small columns live in memory; only images are read from disk per item
        self.meta = {
            k: np.concatenate([m[k] for m in meta]) for k in ("pid", "label", "camid", "source")
        }
        self._handles: dict[int, tuple[h5py.Dataset, bool]] = {}
        self._pid = -1
        with h5py.File(self.files[0], "r") as f:
            self.image_shape = f["images"].shape[1:]

    def __len__(self) -> int:
        return self.offsets[-1]

    def _images(self, i: int) -> tuple[h5py.Dataset, bool]:
        """The ``images`` dataset of shard ``i``, opened once per process, and whether its
        chunks can be inflated directly (gzip, one image per chunk, no shuffle)."""
        if self._pid != os.getpid():  # a new worker process: never share HDF5 handles
            self._handles, self._pid = {}, os.getpid()
        if i not in self._handles:
            d = h5py.File(self.files[i], "r")["images"]
            fast = (
                d.compression == "gzip"
                and d.chunks is not None
                and d.chunks[0] == 1
                and not d.shuffle
            )
            self._handles[i] = (d, fast)
        return self._handles[i]

    def locate(self, idx: int) -> tuple[int, int]:
        if not 0 <= idx < len(self):
            raise IndexError(idx)
        s = bisect.bisect_right(self.offsets, idx) - 1
        return s, idx - self.offsets[s]

    def column(self, key: str) -> np.ndarray:
        """One whole column (``pid``, ``camid``, ``label``, ``source``) over all shards."""
        return self.meta[key]

    def image(self, s: int, j: int) -> np.ndarray:
        """Image ``j`` of shard ``s``: its gzip chunk inflated directly (one image per chunk),
        skipping h5py's selection machinery; any other layout goes through plain h5py."""
        d, fast = self._images(s)
        if fast:
            mask, raw = d.id.read_direct_chunk((j, 0, 0, 0))
            if mask == 0:
                # a writable buffer: torch.from_numpy warns on read-only arrays
                buf = bytearray(zlib.decompress(raw))
                return np.frombuffer(buf, dtype=np.uint8).reshape(self.image_shape)
        return d[j]

    def __getitem__(self, idx: int) -> dict:
        s, j = self.locate(idx)
        img = self.image(s, j)
        return {
            "image": self.transform(Image.fromarray(img))
            if self.transform
            else torch.from_numpy(img),
            "pid": int(self.meta["pid"][idx]),
            "label": int(self.meta["label"][idx]),
            "camid": int(self.meta["camid"][idx]),
            "source": str(self.meta["source"][idx]),
        }


def export(
    shards: str | os.PathLike,
    out: str | os.PathLike,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write shards as a Market-1501-layout folder (``OUT/bounding_box_train/*.jpg``).

    Names are ``PPPP_cCs1_FFFFFF_01.jpg`` with the source's pid and camera and the job's global
    image index as a unique frame number, so torchreid or any Market reader can load them.

    The images go to a hidden sibling folder renamed into place at the end: an export that
    fails (a corrupt shard, a full disk) leaves nothing behind and can simply be rerun.

    Returns:
        The number of images written.
    """
    ds = ShardDataset(shards)
    final = Path(out) / "bounding_box_train"
    if final.exists() and any(final.iterdir()):
        raise UserError(f"output folder exists and is not empty: {final}")
    final.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(final.parent, "export"), atomic_path(final) as out:
        if final.exists() and any(final.iterdir()):  # filled while this job waited to start
            raise UserError(f"output folder exists and is not empty: {final}")
        out.mkdir()
        done = _export(ds, out, progress)
    return done


def _export(ds: ShardDataset, out: Path, progress: Callable[[int, int], None] | None) -> int:
    done = 0
    for p in ds.files:
        with _open(p) as f:
            images, pid, camid, index = f["images"], f["pid"][()], f["camid"][()], f["index"][()]
            if index.max(initial=0) > 999_999:
                raise UserError(
                    "more than 1,000,000 images cannot have unique 6-digit Market frame numbers"
                )
            for j in range(len(pid)):
                name = f"{int(pid[j]):04d}_c{int(camid[j]) + 1}s1_{int(index[j]):06d}_01.jpg"
                Image.fromarray(images[j]).save(out / name, format="JPEG", quality=95)
                done += 1
                if progress:
                    progress(done, len(ds))
    return done


def check_fits(shards: ShardDataset, ds) -> None:
    """Refuse shards of another dataset: their attributes and their pid -> label map must fit
    ``ds``'s training ids."""
    if len(shards) == 0:
        raise UserError("the shard folder holds no images")
    names = {a.get("dataset") for a in shards.attrs}
    if names != {ds.name}:
        raise UserError(
            f"shards were made from {', '.join(sorted(map(str, names)))}, not {ds.name}"
        )
    digests = set()
    for a in shards.attrs:
        try:
            people = json.loads(a["config"])["job"].get("people")
        except (KeyError, TypeError, ValueError, AttributeError):
            people = None  # shards of the generator's own dataset carry no people record
        if people:
            digests.add(people["train_sha256"])
    if digests and digests != {ds.full_train_digest()}:
        raise UserError(
            f"shards show the people of another {ds.name} dataset than the one at {ds.root} "
            "(its training images differ)"
        )
    train_map = {it.raw_pid: it.pid for it in ds.train}
    pid, label = shards.column("pid"), shards.column("label")
    bad = [
        (p, q) for p, q in zip(pid.tolist(), label.tolist(), strict=True) if train_map.get(p) != q
    ]
    if bad:
        raise UserError(
            f"shard pid {bad[0][0]} (label {bad[0][1]}) is not a training id of {ds.name} "
            f"at {ds.root}"
        )
