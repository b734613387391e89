"""Training and test pairs, and the torch ``Dataset`` of (condition, target pose, target) items."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from reidaug.data import keypoints as K
from reidaug.data.market1501 import DISTRACTOR_PID, JUNK_PID, Item, Market1501, parse_name
from reidaug.data.pose import HeatmapMode, pose_mask, render_heatmaps
from reidaug.errors import UserError

Pair = tuple[str, str]


def valid_pose_groups(
    items: Sequence[Item], annotations: Mapping[str, np.ndarray]
) -> dict[int, list[str]]:
    """Image names with a valid pose, grouped by raw pid (ids ``-1`` and ``0`` excluded)."""
    groups: dict[int, list[str]] = {}
    for it in items:
        if it.raw_pid in (JUNK_PID, DISTRACTOR_PID):
            continue
        kps = annotations.get(it.name)
        if kps is not None and K.is_valid_pose(kps):
            groups.setdefault(it.raw_pid, []).append(it.name)
    return dict(sorted(groups.items()))


def train_pairs(items: Sequence[Item], annotations: Mapping[str, np.ndarray]) -> list[Pair]:
    """All ordered pairs of two different same-id images whose poses are valid.

    This is the Deformable GAN / Pose-Transfer protocol: on the real Market-1501 annotations it
    gives 263,632 pairs over 12,116 valid-pose images of 745 ids. Ids ``-1`` and ``0`` are
    excluded.
    """
    groups = valid_pose_groups(items, annotations)
    return [(a, b) for names in groups.values() for a in names for b in names if a != b]


def pg2_test_pairs(
    items: Sequence[Item], annotations: Mapping[str, np.ndarray], n: int = 12800, seed: int = 0
) -> list[Pair]:
    """The PG2 protocol: ``n`` random same-id test pairs with valid poses, seeded.

    A pair is drawn uniformly among all ordered same-id pairs (with replacement).
    """
    groups = [g for g in valid_pose_groups(items, annotations).values() if len(g) > 1]
    if not groups:
        raise UserError("no id has two images with a valid pose: cannot sample test pairs")
    rng = np.random.default_rng(seed)
    sizes = np.array([len(g) * (len(g) - 1) for g in groups], dtype=np.float64)
    out: list[Pair] = []
    for g in rng.choice(len(groups), size=n, p=sizes / sizes.sum()):
        a, b = rng.choice(len(groups[g]), size=2, replace=False)
        out.append((groups[g][a], groups[g][b]))
    return out


def protocol_pairs(ds: Market1501, protocol: str, seed: int = 0, n: int = 12800) -> list[Pair]:
    """The test pairs of an evaluation protocol: ``posegan`` = the dataset's standard pairs
    (12,000 on Market); ``pg2`` = ``n`` seeded random same-id gallery pairs."""
    if protocol == "posegan":
        return ds.test_pairs()
    if protocol == "pg2":
        return pg2_test_pairs(ds.items("gallery"), ds.annotations("gallery"), n=n, seed=seed)
    raise UserError(f'unknown protocol "{protocol}"; expected one of: pg2, posegan')


def stats(pairs: Sequence[Pair]) -> dict[str, int]:
    """Count pairs, distinct images and ids in a pair list."""
    names = {n for p in pairs for n in p}
    return {
        "pairs": len(pairs),
        "images": len(names),
        "ids": len({parse_name(n)[0] for n in names}),
    }


def load_image(path: Path, height: int = 128, width: int = 64, exact: bool = False) -> np.ndarray:
    """Decode an RGB image to ``uint8 (H, W, 3)``; a corrupt or missing file is a ``UserError``.

    Other sizes are resized, or with ``exact`` refused (a ``UserError`` naming the file).
    """
    try:
        with Image.open(path) as im:
            if exact and im.size != (width, height):
                raise UserError(
                    f"{path} is {im.size[0]}x{im.size[1]} pixels, expected {width}x{height} "
                    "(width x height), the size of the dataset's images"
                )
            im = im.convert("RGB")
            if im.size != (width, height):
                im = im.resize((width, height), Image.BILINEAR)
            return np.array(im, dtype=np.uint8)
    except FileNotFoundError:
        raise UserError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise image_error(path, e) from None


def image_error(path: Path, e: BaseException) -> UserError:
    """What went wrong reading an image: the system's reason (permission denied, a symlink
    loop ...) when there is one, else an undecodable file."""
    if isinstance(e, OSError) and not isinstance(e, UnidentifiedImageError) and e.strerror:
        return UserError(f"cannot read image {path} ({e.strerror.lower()})")
    return UserError(f"cannot decode image {path} (corrupt or not an image)")


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """``uint8 (H, W, 3)`` to ``float32 (3, H, W)`` in [-1, 1]."""
    return torch.from_numpy(img).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """``(..., 3, H, W)`` in [-1, 1] to ``uint8 (..., H, W, 3)``."""
    x = ((t.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.movedim(-3, -1).cpu().numpy()


@dataclass(frozen=True)
class PairSpec:
    """How to render a pair item."""

    heatmap: HeatmapMode = "pg2"
    flip: bool = False
    source_pose: bool = False


class PairDataset(Dataset):
    """Pairs of same-id images as model inputs.

    Each item is a dict with ``condition`` and ``target`` (``3xHxW`` in [-1, 1]), ``target_pose``
    (``18xHxW`` heatmaps), ``target_mask`` (``1xHxW`` in {0, 1}), ``source_keypoints`` and
    ``target_keypoints`` (``18x2`` float ``(y, x)``, -1 where missing), ``pid``, and with
    ``source_pose=True`` also ``source_pose``. With ``flip=True`` the index space doubles: items
    ``n .. 2n-1`` are the mirrored copies of items ``0 .. n-1``, images and keypoints flipped
    together (left and right joints swapped), so any sampler picks flips deterministically.

    Args:
        dataset: a ``Market1501``-like dataset.
        pairs: ``(from, to)`` image names.
        split: where the names live: ``train`` or ``gallery`` (``test``).
        heatmap: ``pg2`` disks in [-1, 1] or ``gaussian``.
        flip: add the left-right mirrored copies.
        source_pose: also render the condition image's heatmaps.
        cache_images: keep decoded images in memory (12,936 Market train images take 320 MB).

    Example:
        >>> ds = Market1501("../shared/data/market1501")  # doctest: +SKIP
        >>> pairs = train_pairs(ds.train, ds.annotations("train"))  # doctest: +SKIP
        >>> item = PairDataset(ds, pairs, "train")[0]  # doctest: +SKIP
        >>> item["target_pose"].shape  # doctest: +SKIP
        torch.Size([18, 128, 64])
    """

    def __init__(
        self,
        dataset: Market1501,
        pairs: Sequence[Pair],
        split: Literal["train", "gallery", "test"] = "train",
        heatmap: HeatmapMode = "pg2",
        flip: bool = False,
        source_pose: bool = False,
        cache_images: bool = True,
    ) -> None:
        if not pairs:
            raise UserError(f"no pairs to train or test on in {dataset.root} ({split})")
        self.pairs = list(pairs)
        self.spec = PairSpec(heatmap, flip, source_pose)
        self.height, self.width = dataset.height, dataset.width
        self.dir = dataset.split_dir("gallery" if split in ("gallery", "test") else split)
        self.ann = dataset.annotations(split)
        for _, b in self.pairs[:1] + self.pairs[-1:]:
            if b not in self.ann:
                raise UserError(
                    f"target image {b} has no pose annotation in {dataset.annotation_path(split)}"
                )
        self._cache: dict[str, np.ndarray] | None = {} if cache_images else None
        # pose masks per (target, flipped): half of an item's CPU time, 8 KB each
        self._masks: dict[tuple[str, int], np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.pairs) * (2 if self.spec.flip else 1)

    def image(self, name: str) -> np.ndarray:
        if self._cache is not None and name in self._cache:
            return self._cache[name]
        img = load_image(self.dir / name, self.height, self.width)
        if self._cache is not None:
            self._cache[name] = img
        return img

    def _mask(self, name: str, flip: int, kps: np.ndarray) -> np.ndarray:
        key = (name, flip)
        if key not in self._masks:
            self._masks[key] = pose_mask(kps, self.height, self.width).astype(np.uint8)
        return self._masks[key].astype(np.float32)

    def keypoints(self, name: str) -> np.ndarray:
        kps = self.ann.get(name)
        if kps is None:
            raise UserError(f"image {name} has no pose annotation")
        return kps

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        flip, i = divmod(i, len(self.pairs))
        a, b = self.pairs[i]
        cond, tgt = self.image(a), self.image(b)
        kb = self.keypoints(b)
        ka = self.ann.get(a)
        ka = ka if ka is not None else np.full((K.NUM_KEYPOINTS, 2), K.MISSING)
        if flip:
            cond, tgt = cond[:, ::-1], tgt[:, ::-1]
            kb = K.flip_keypoints(kb, self.width)
            ka = K.flip_keypoints(ka, self.width)
        item = {
            "condition": to_tensor(np.ascontiguousarray(cond)),
            "target": to_tensor(np.ascontiguousarray(tgt)),
            "target_pose": torch.from_numpy(
                render_heatmaps(kb, self.height, self.width, self.spec.heatmap)
            ),
            "target_mask": torch.from_numpy(self._mask(b, flip, kb))[None],
            "source_keypoints": torch.from_numpy(ka.astype(np.float32)),
            "target_keypoints": torch.from_numpy(kb.astype(np.float32)),
            "pid": torch.tensor(parse_name(b)[0]),
            "index": torch.tensor(i),
        }
        if self.spec.source_pose:
            item["source_pose"] = torch.from_numpy(
                render_heatmaps(ka, self.height, self.width, self.spec.heatmap)
            )
        return item
