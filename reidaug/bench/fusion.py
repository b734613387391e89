"""Generation at test time: every query and gallery image is also generated in K canonical
poses, and its re-ID feature fused with those of its views (PN-GAN, Qian et al., ECCV 2018;
Pose2ID, CVPR 2025). The free control is flip-averaging: each image's feature averaged with its
horizontal flip's.

Features are L2-normalised before they are combined and after, so the fused feature of an image
whose views equal it is its plain feature.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from reidaug.data.keypoints import is_valid_pose
from reidaug.data.pairs import to_tensor, to_uint8
from reidaug.data.pose import render_heatmaps
from reidaug.errors import UserError
from reidaug.reidnet.model import embed
from reidaug.synthesis.poses import PoseBank, PoseSampler

Fusion = Literal["mean", "max"]
FUSIONS = ("mean", "max")


def l2n(x: torch.Tensor) -> torch.Tensor:
    """Rows (or the last axis) scaled to unit length."""
    return F.normalize(x.float(), dim=-1)


def flip_average(plain: torch.Tensor, flipped: torch.Tensor) -> torch.Tensor:
    """The flip-averaged feature: the normalised mean of the two normalised features."""
    return l2n(l2n(plain) + l2n(flipped))


def fuse(
    plain: torch.Tensor,
    views: torch.Tensor,
    has_views: torch.Tensor | None = None,
    fusion: Fusion = "mean",
    weight: float = 1.0,
) -> torch.Tensor:
    """Each image's normalised feature fused with its K generated views'.

    Args:
        plain: ``(N, D)`` features of the images.
        views: ``(N, K, D)`` features of their views (``K`` may be 0).
        has_views: ``(N,)`` bool, False where an image has no pose (it keeps its plain feature).
        fusion: ``mean``: ``weight * plain + sum(views)``; ``max``: the element-wise maximum of
            the plain feature (times ``weight``) and the views'.

    Returns:
        ``(N, D)`` unit-length features.
    """
    if fusion not in FUSIONS:
        raise UserError(f'unknown fusion "{fusion}"; expected one of: {", ".join(FUSIONS)}')
    if not weight >= 0:
        raise UserError(f"--fusion-weight must be 0 or more, got {weight}")
    p = l2n(plain)
    if views.shape[1] == 0:
        return p
    v = l2n(views)
    mean = fusion == "mean"
    out = l2n(weight * p + v.sum(1) if mean else torch.maximum(weight * p, v.max(1).values))
    if has_views is not None:
        out = torch.where(has_views[:, None].to(out.device), out, p)
    return out


def canonical_poses(bank: PoseBank, k: int, seed: int = 0) -> np.ndarray:
    """The bank indices of ``k`` canonical poses: for each k-means centroid of the normalised
    training poses, the nearest bank pose (``synthesize --strategy kmeans``'s choice)."""
    if k < 1:
        raise UserError(f"--test-poses must be at least 1, got {k}")
    order = PoseSampler(bank, k, "kmeans", seed).canonical
    out: list[int] = []
    for row in order:  # distinct poses, nearest first
        out.append(next(int(i) for i in row if int(i) not in out))
    return np.array(out, np.int64)


@torch.no_grad()
def generate_views(
    recipe,
    images: Sequence[np.ndarray],
    source_keypoints: np.ndarray,
    poses: np.ndarray,
    heatmap: str,
    device: torch.device | str = "cpu",
    batch_size: int = 64,
) -> np.ndarray:
    """Each image generated in each target pose: ``(N, K, H, W, 3)`` ``uint8``.

    Args:
        recipe: a loaded generator's recipe (``load_generator(...).recipe``).
        images: ``(H, W, 3)`` ``uint8`` images at the generator's size.
        source_keypoints: ``(N, 18, 2)`` their keypoints (``-1`` where missing).
        poses: ``(K, 18, 2)`` the target poses.
    """
    n, k = len(images), len(poses)
    if not n or not k:
        return np.zeros((n, k, 0, 0, 3), np.uint8)
    h, w = images[0].shape[:2]
    heat = torch.stack([torch.from_numpy(render_heatmaps(p, h, w, heatmap)) for p in poses]).to(
        device
    )
    tgt = torch.from_numpy(np.asarray(poses, np.float32)).to(device)
    out = np.empty((n, k, h, w, 3), np.uint8)
    jobs = [(i, j) for i in range(n) for j in range(k)]
    for b in range(0, len(jobs), batch_size):
        part = jobs[b : b + batch_size]
        ii = [i for i, _ in part]
        jj = torch.tensor([j for _, j in part], device=device)
        cond = torch.stack([to_tensor(images[i]) for i in ii]).to(device)
        src = torch.from_numpy(np.asarray(source_keypoints, np.float32)[ii]).to(device)
        img = recipe.final(cond, heat[jj], src, tgt[jj])
        for (i, j), x in zip(part, to_uint8(img), strict=True):
            out[i, j] = x
    return out


@torch.no_grad()
def test_time_features(
    models: Sequence[tuple[torch.nn.Module, dict]],
    images: Sequence[np.ndarray],
    keypoints: np.ndarray,
    recipe,
    poses: np.ndarray,
    heatmap: str,
    device: torch.device | str = "cpu",
    chunk: int = 256,
    progress=None,
) -> list[dict[str, torch.Tensor]]:
    """The features the four rankings need, for every re-ID model, computed chunk by chunk.

    The views are generated once and embedded by each model in turn: generation costs several
    times a small re-ID network's forward pass, so ranking many models (every arm and seed of a
    bench) costs little more than ranking one.

    Args:
        models: ``(re-ID model, meta)`` pairs; ``meta`` holds the model's input size.
        images: ``uint8`` images at the generator's size.
        keypoints: ``(N, 18, 2)`` their poses; an image with no shoulder and hip gets no views.
        poses: ``(K, 18, 2)`` canonical target poses.
        progress: called as ``progress(done, total)`` over the images.

    Returns:
        Per model: ``plain`` and ``flipped`` ``(N, D)``, ``views`` and ``views_flipped``
        ``(N, K, D)`` (zeros where an image has no pose) and ``has_pose`` ``(N,)``.
    """
    n, k = len(images), len(poses)
    has = torch.tensor([bool(is_valid_pose(kp)) for kp in keypoints], dtype=torch.bool)
    keys = ("plain", "flipped", "views", "views_flipped")
    out: list[dict[str, list[torch.Tensor]]] = [{key: [] for key in keys} for _ in models]
    for lo in range(0, n, chunk):
        part = [np.asarray(images[i]) for i in range(lo, min(n, lo + chunk))]
        idx = [i for i in range(len(part)) if has[lo + i]]
        flat: list[np.ndarray] = []
        if idx and k:
            src = keypoints[lo + np.array(idx)]
            gen = generate_views(recipe, [part[i] for i in idx], src, poses, heatmap, device)
            flat = list(gen.reshape(-1, *gen.shape[2:]))
        for (reid, meta), o in zip(models, out, strict=True):
            o["plain"].append(embed(reid, part, meta, device))
            o["flipped"].append(embed(reid, [im[:, ::-1] for im in part], meta, device))
            d = o["plain"][-1].shape[1]
            views = torch.zeros(len(part), k, d)
            vflip = torch.zeros(len(part), k, d)
            if flat:
                views[idx] = embed(reid, flat, meta, device).reshape(len(idx), k, d)
                vflip[idx] = embed(reid, [im[:, ::-1] for im in flat], meta, device).reshape(
                    len(idx), k, d
                )
            o["views"].append(views)
            o["views_flipped"].append(vflip)
        if progress:
            progress(min(n, lo + chunk), n)
    return [{**{key: torch.cat(o[key]) for key in keys}, "has_pose": has} for o in out]


ROWS = ("plain", "flip-averaged", "pose-fused", "pose-fused + flip")


def fused_rows(
    f: dict[str, torch.Tensor], fusion: Fusion = "mean", weight: float = 1.0
) -> dict[str, torch.Tensor]:
    """The four features of every image: plain, flip-averaged, pose-fused and pose-fused with
    every image and view flip-averaged."""
    has = f["has_pose"]
    fused = fuse(f["plain"], f["views"], has, fusion, weight)
    fused_flip = fuse(f["flipped"], f["views_flipped"], has, fusion, weight)
    return {
        "plain": l2n(f["plain"]),
        "flip-averaged": flip_average(f["plain"], f["flipped"]),
        "pose-fused": fused,
        "pose-fused + flip": flip_average(fused, fused_flip),
    }
