"""Body-part geometry of Deformable GAN (Siarohin et al., CVPR 2018): ten part affines from a
target pose to a source pose, the parts' masks in the target pose, and the warp they define.

Everything is batched torch on ``(B, 18, 2)`` keypoints ``(y, x)`` in pixels, ``-1`` where
missing (the annotation format). An affine maps a target pixel ``(x, y, 1)`` to the source
pixel it samples, so warping is one ``grid_sample`` per part: backward warping, as in the
authors' code (``pose_transform.py``). The same normalised affine serves every resolution of a
U-Net's features, since ``align_corners=False`` keeps the image's extent at every level.

The ten parts, in order: torso (Rhip, Lhip, Lsho, Rsho); head (the nose, eyes and ears present
in both poses, plus both shoulders); then the limb segments Rhip-Rkne, Lhip-Lkne, Rkne-Rank,
Lkne-Lank, Rsho-Relb, Lsho-Lelb, Relb-Rwri, Lelb-Lwri. A limb is a rectangle around its segment
(half-width ``0.2 st``, ``st`` the mean shoulder-hip distance), extended by 0.1 of its length
past the first joint and by ``0.1`` (upper limbs) or ``0.5`` (lower limbs) past the second. A
limb missing in the source pose uses its mirrored counterpart; a part without a transform, or
missing in the target pose, has an empty mask.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from reidaug.data.keypoints import KP
from reidaug.data.pairs import to_uint8

PART_NAMES: tuple[str, ...] = (
    "torso",
    "head",
    "Rthigh",
    "Lthigh",
    "Rshin",
    "Lshin",
    "Rupperarm",
    "Lupperarm",
    "Rforearm",
    "Lforearm",
)
NUM_PARTS = len(PART_NAMES)
#: Index permutation of the parts under a horizontal flip (left and right swapped).
PART_FLIP: tuple[int, ...] = (0, 1, 3, 2, 5, 4, 7, 6, 9, 8)

TORSO = (KP["Rhip"], KP["Lhip"], KP["Lsho"], KP["Rsho"])
HEAD = (KP["nose"], KP["Reye"], KP["Leye"], KP["Rear"], KP["Lear"])
#: (first joint, second joint, extension past the second joint) of each limb part
LIMBS: tuple[tuple[int, int, float], ...] = (
    (KP["Rhip"], KP["Rkne"], 0.1),
    (KP["Lhip"], KP["Lkne"], 0.1),
    (KP["Rkne"], KP["Rank"], 0.5),
    (KP["Lkne"], KP["Lank"], 0.5),
    (KP["Rsho"], KP["Relb"], 0.1),
    (KP["Lsho"], KP["Lelb"], 0.1),
    (KP["Relb"], KP["Rwri"], 0.5),
    (KP["Lelb"], KP["Lwri"], 0.5),
)
#: the mirrored counterpart of each limb (its index in ``LIMBS``)
LIMB_MIRROR = (1, 0, 3, 2, 5, 4, 7, 6)
LIMB_HALF_WIDTH = 0.2
LIMB_EXTEND_FROM = 0.1
HEAD_HALF_SIZE = 0.4


class PartWarp(NamedTuple):
    """The part geometry of a batch of (source, target) poses.

    Attributes:
        theta: ``(B, P, 2, 3)`` affines in ``affine_grid``'s normalised coordinates, from the
            target frame to the source frame.
        masks: ``(B, P, H, W)`` in {0, 1}: where each part lies in the target pose, zero for a
            part without a transform.
    """

    theta: torch.Tensor
    masks: torch.Tensor
    #: composite grids by feature size, filled on first use (:func:`composite_grid`)
    grids: dict | None = None


def _xy(kps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, 18, 2)`` (y, x) keypoints as float ``(x, y)`` points and a presence mask."""
    kps = kps.to(torch.float64)
    ok = (kps[..., 0] >= 0) & (kps[..., 1] >= 0)
    return kps.flip(-1), ok


def _st(xy: torch.Tensor, ok: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean shoulder-hip distance ``st`` of each pose (root mean square of the two sides,
    as the authors compute it) and whether all four joints are present."""
    rs, ls, rh, lh = (xy[:, KP[n]] for n in ("Rsho", "Lsho", "Rhip", "Lhip"))
    d = ((rh - rs) ** 2).sum(-1) + ((lh - ls) ** 2).sum(-1)
    have = ok[:, list(TORSO)].all(-1)
    return (d / 2).sqrt(), have


def _limb_ends(
    xy: torch.Tensor, st: torch.Tensor, mirror: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each limb's rectangle in poses ``xy`` (``(B, 18, 2)``) as its axis ``(B, 8, 2)`` ends
    (the joints extended past both ends) and ``(B, 8)`` half-width; with ``mirror``, each
    limb's mirrored counterpart's."""
    order = [LIMBS[LIMB_MIRROR[i] if mirror else i] for i in range(len(LIMBS))]
    a = xy[:, [j for j, _, _ in order]]
    b = xy[:, [j for _, j, _ in order]]
    ext = torch.tensor([e for _, _, e in order], dtype=xy.dtype, device=xy.device)
    a2 = a + (a - b) * LIMB_EXTEND_FROM
    b2 = b + (b - a2) * ext[:, None]
    return a2, b2, (st * LIMB_HALF_WIDTH)[:, None].expand(-1, len(LIMBS))


def _limbs(xy: torch.Tensor, st: torch.Tensor, mirror: bool = False) -> torch.Tensor:
    """``(B, 8, 4, 2)``: the corners of every limb's rectangle (:func:`_limb_ends`). A limb of
    zero length gets a 2-pixel square, as the authors' code draws it."""
    a2, b2, half = _limb_ends(xy, st, mirror)
    d = a2 - b2
    n = torch.stack([-d[..., 1], d[..., 0]], -1)
    length = n.norm(dim=-1, keepdim=True)
    off = half[..., None] * n / length.clamp_min(1e-12)
    poly = torch.stack([a2 + off, a2 - off, b2 - off, b2 + off], -2)
    square = torch.stack([a2 + 1, a2 - 1, b2 - 1, b2 + 1], -2)
    return torch.where((length > 0)[..., None], poly, square)


def _fit(
    tgt: torch.Tensor, src: torch.Tensor, w: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted least-squares affines ``(B, 2, 3)`` with ``A @ [tgt, 1] ~ src``, from ``(B, N,
    2)`` points weighted by ``w`` (0: absent), and whether each fit is determined (at least
    three points not on one line)."""
    x = torch.cat([tgt, torch.ones_like(tgt[..., :1])], -1) * w[..., None]
    xtx = x.transpose(1, 2) @ x
    xty = x.transpose(1, 2) @ (src * w[..., None])
    # determined when the target points span a plane: their weighted covariance is not
    # singular (a real part's is >= 1 px^4; points on one line give 0)
    n = w.sum(-1).clamp_min(1e-12)
    mean = (tgt * w[..., None]).sum(1) / n[:, None]
    d = (tgt - mean[:, None]) * w[..., None].sqrt()
    ok = (torch.linalg.det(d.transpose(1, 2) @ d / n[:, None, None]) > 1e-3) & (w.sum(-1) >= 3)
    eye = torch.eye(3, dtype=x.dtype, device=x.device)
    safe = torch.where(ok[:, None, None], xtx, eye)
    a = torch.linalg.solve(safe, xty).transpose(1, 2)
    ident = eye[:2].expand(len(a), 2, 3)
    return torch.where(ok[:, None, None], a, ident), ok


def _normalise(a: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pixel-frame affines ``(..., 2, 3)`` in ``affine_grid``'s ``align_corners=False`` frame
    (``u = (2x + 1) / W - 1``)."""
    n = torch.tensor(
        [[2 / width, 0, 1 / width - 1], [0, 2 / height, 1 / height - 1], [0, 0, 1]],
        dtype=a.dtype,
        device=a.device,
    )
    full = torch.cat([a, torch.zeros_like(a[..., :1, :])], -2)
    full[..., 2, 2] = 1
    return (n @ full @ torch.linalg.inv(n))[..., :2, :]


def part_affines(source: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The ten part affines in pixels, ``(B, 10, 2, 3)`` from target to source, and ``(B, 10)``
    whether each exists (both poses have the part, or the source its mirrored limb)."""
    sxy, sok = _xy(source)
    txy, tok = _xy(target)
    sst, s_has = _st(sxy, sok)
    tst, t_has = _st(txy, tok)
    both = s_has & t_has
    affines, valid = [], []
    torso = list(TORSO)
    w = torch.ones(len(sxy), 4, dtype=sxy.dtype, device=sxy.device)
    a, ok = _fit(txy[:, torso], sxy[:, torso], w)
    affines.append(a)
    valid.append(ok & both)
    # head: the head points present in both poses and both shoulders, if any head point is
    head_both = sok[:, list(HEAD)] & tok[:, list(HEAD)]
    pts = list(HEAD) + [KP["Lsho"], KP["Rsho"]]
    hw = torch.cat([head_both, head_both.any(-1, keepdim=True).expand(-1, 2)], -1).to(sxy.dtype)
    a, ok = _fit(txy[:, pts], sxy[:, pts], hw)
    affines.append(a)
    valid.append(ok & both & head_both.any(-1))
    j0 = [j for j, _, _ in LIMBS]
    j1 = [j for _, j, _ in LIMBS]
    m0 = [j0[m] for m in LIMB_MIRROR]
    m1 = [j1[m] for m in LIMB_MIRROR]
    own = sok[:, j0] & sok[:, j1]
    mirror = sok[:, m0] & sok[:, m1]
    spoly = torch.where(own[..., None, None], _limbs(sxy, sst), _limbs(sxy, sst, mirror=True))
    tpoly = _limbs(txy, tst)
    b, n = own.shape
    a, ok = _fit(tpoly.flatten(0, 1), spoly.flatten(0, 1), tpoly.new_ones(b * n, 4))
    affines += list(a.view(b, n, 2, 3).unbind(1))
    valid += list((ok.view(b, n) & both[:, None] & (own | mirror) & tok[:, j0] & tok[:, j1]).T)
    return torch.stack(affines, 1), torch.stack(valid, 1)


def _inside_limbs(
    xy: torch.Tensor, st: torch.Tensor, gx: torch.Tensor, gy: torch.Tensor
) -> torch.Tensor:
    """``(B, 8, H, W)``: pixel centres inside (or on) each limb's rectangle, from their
    distances along and across its axis (so a mirrored pose gives the mirrored mask)."""
    a2, b2, half = (t.float() for t in _limb_ends(xy, st))
    d = b2 - a2
    length = d.norm(dim=-1).clamp_min(1e-6)
    ux, uy = (d / length[..., None]).unbind(-1)
    px = gx - a2[..., 0, None, None]
    py = gy - a2[..., 1, None, None]
    along = px * ux[..., None, None] + py * uy[..., None, None]
    across = (px * uy[..., None, None] - py * ux[..., None, None]).abs()
    eps = 1e-4
    return (
        (along >= -eps)
        & (along <= length[..., None, None] + eps)
        & (across <= half[..., None, None] + eps)
    )


def part_masks(target: torch.Tensor, valid: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The ten parts' masks in the target pose, ``(B, 10, H, W)`` float in {0, 1}; zero where
    ``valid`` is false. The torso's is the whole image (as the authors' code has it); the
    head's a square of half-size ``0.4 st`` around the mean of the target's head points."""
    txy, tok = _xy(target)
    st, _ = _st(txy, tok)
    gy, gx = torch.meshgrid(
        torch.arange(height, dtype=torch.float32, device=txy.device),
        torch.arange(width, dtype=torch.float32, device=txy.device),
        indexing="ij",
    )
    head_ok = tok[:, list(HEAD)]
    n = head_ok.sum(-1).clamp_min(1)[:, None]
    centre = ((txy[:, list(HEAD)] * head_ok[..., None]).sum(1) / n).float()
    r = (HEAD_HALF_SIZE * st).float()[:, None, None]
    head = ((gx - centre[:, 0, None, None]).abs() <= r) & (
        (gy - centre[:, 1, None, None]).abs() <= r
    )
    limbs = _inside_limbs(txy, st, gx, gy)
    torso = torch.ones_like(head)
    out = torch.cat([torso[:, None], head[:, None], limbs], 1) & valid[:, :, None, None]
    return out.float()


def part_warp(source: torch.Tensor, target: torch.Tensor, height: int, width: int) -> PartWarp:
    """The part geometry of ``(B, 18, 2)`` source and target keypoints in an image of
    ``height x width``: normalised affines and target-pose masks (float32)."""
    a, valid = part_affines(source, target)
    theta = _normalise(a, height, width).float()
    return PartWarp(theta, part_masks(target, valid, height, width), {})


def warp_parts(x: torch.Tensor, warp: PartWarp) -> torch.Tensor:
    """``(B, P, C, h, w)``: ``x`` (B, C, h, w) warped by every part's affine and multiplied by
    its mask (resized to ``h x w`` by nearest neighbour); zero outside the source image."""
    b, c, h, w = x.shape
    p = warp.theta.shape[1]
    grid = F.affine_grid(warp.theta.reshape(b * p, 2, 3), [b * p, c, h, w], align_corners=False)
    xs = x[:, None].expand(b, p, c, h, w).reshape(b * p, c, h, w)
    out = F.grid_sample(xs, grid.to(x.dtype), align_corners=False).view(b, p, c, h, w)
    return out * _masks_at(warp, h, w)[:, :, None].to(x.dtype)


def _masks_at(warp: PartWarp, h: int, w: int) -> torch.Tensor:
    masks = warp.masks
    if masks.shape[-2:] != (h, w):
        masks = F.interpolate(masks, size=(h, w), mode="nearest")
    return masks


def composite_grid(warp: PartWarp, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One sampling grid ``(B, h, w, 2)`` for all parts, and ``(B, h, w)`` where it is defined:
    each target pixel takes the affine of the last part of :data:`PART_NAMES` (limbs over the
    head over the torso) whose mask covers it and whose affine lands inside the source."""
    if warp.grids is not None and (h, w) in warp.grids:
        return warp.grids[(h, w)]
    b, p = warp.theta.shape[:2]
    grids = F.affine_grid(warp.theta.reshape(b * p, 2, 3), [b * p, 1, h, w], align_corners=False)
    grids = grids.view(b, p, h, w, 2)
    usable = (_masks_at(warp, h, w) > 0) & (grids.abs() <= 1).all(-1)
    grid = grids[:, 0]
    for k in range(1, p):  # later parts over earlier ones (an argmax is 10x slower on a CPU)
        grid = torch.where(usable[:, k, :, :, None], grids[:, k], grid)
    if warp.grids is not None:
        warp.grids[(h, w)] = (grid, usable.any(1))
    return grid, usable.any(1)


def deform(x: torch.Tensor, warp: PartWarp) -> torch.Tensor:
    """The deformable skip: features ``x`` (B, C, h, w) of the source moved to the target pose
    part by part (:func:`composite_grid`), zero where no part lies.

    Deformable GAN warps the features once per part and takes their maximum; one composite
    grid costs one ``grid_sample`` instead of ten, whose backward pass made a CPU training step
    3.8 times slower (``benchmarks/deform_cost.py``), and it needs no sign assumption on the
    features.
    """
    grid, covered = composite_grid(warp, *x.shape[-2:])
    out = F.grid_sample(x, grid.to(x.dtype), align_corners=False)
    return out * covered[:, None].to(x.dtype)


def paste_warp(source: torch.Tensor, warp: PartWarp) -> torch.Tensor:
    """The training-free part warp: every part of ``source`` images (B, 3, H, W) moved to the
    target pose (:func:`composite_grid`) and pasted on the source image itself where a part
    lies. The torso's mask is the whole image, so its warp carries the background."""
    grid, covered = composite_grid(warp, *source.shape[-2:])
    moved = F.grid_sample(source, grid.to(source.dtype), align_corners=False)
    return torch.where(covered[:, None], moved, source)


def warp_images(images: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """:func:`paste_warp` on ``uint8 (B, H, W, 3)`` images with ``(B, 18, 2)`` keypoints of
    their poses (``source``) and of the poses to move them to (``target``)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1
    h, w = images.shape[1:3]
    geo = part_warp(
        torch.from_numpy(np.asarray(source)), torch.from_numpy(np.asarray(target)), h, w
    )
    return to_uint8(paste_warp(x, geo))
