"""The embedded procedural dataset: synthetic people in Market-1501 layout.

Every image is an articulated figure drawn from its own 18 COCO-18 keypoints, so moving a
person to a new pose is a real pose-transfer problem:

* **Pose:** front, back and both side views, standing or walking (leg and arm swing with
  knee bend), with per-image scale, position and jitter. Occluded joints (the far eye and ear
  in a side view, the face from behind) are annotated ``-1`` as a detector would leave them.
* **Identity:** shirt and trouser colours, a shirt pattern (solid, stripes, checks), sleeve
  and trouser length, skin, hair, shoes and an optional backpack or shoulder bag. The look is
  fixed per id and survives every pose change.
* **Camera:** each of the 6 cameras has its own background (floor, wall, pillars) and
  lighting (brightness and colour cast) applied to the whole frame.

The output is byte-for-byte deterministic for a given ``(ids, seed)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from reidaug.atomic import atomic_path, write_json
from reidaug.data import keypoints as K
from reidaug.data.market1501 import Market1501, write_pairs
from reidaug.errors import UserError

H, W = 128, 64
SS = 2  # supersampling factor for anti-aliased drawing
NUM_CAMERAS = 6
VIEWS = ("front", "back", "left", "right")


class SyntheticMarket(Market1501):
    """The embedded dataset, read with the Market-1501 reader (split folders directly in root).

    Example:
        >>> make_synthetic("data/synthetic", ids=8)  # doctest: +SKIP
        >>> len(SyntheticMarket("data/synthetic").train) > 0  # doctest: +SKIP
        True
    """

    name = "synthetic"

    def __init__(self, root: str | os.PathLike | None = None, annotations=None) -> None:
        if root is None:
            root = os.environ.get("REIDAUG_SYNTHETIC")
            if not root:
                raise UserError(
                    "no root given for the synthetic dataset: pass --root "
                    "(make one with `reidaug data make-synthetic --out DIR`)"
                )
        super().__init__(root, annotations)


# ----------------------------------------------------------------------------- identities
@dataclass(frozen=True)
class Look:
    """The appearance of one identity."""

    shirt: tuple[int, int, int]
    shirt2: tuple[int, int, int]
    pattern: str  # solid | hstripes | vstripes | checks
    stripe: int
    long_sleeves: bool
    trousers: tuple[int, int, int]
    shorts: bool
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    long_hair: bool
    shoes: tuple[int, int, int]
    bag: str  # none | backpack | shoulder
    bag_color: tuple[int, int, int]
    build: float  # width factor


def _hsv(rng: np.random.Generator, s=(0.35, 0.95), v=(0.25, 0.95)) -> tuple[int, int, int]:
    h = rng.uniform(0, 1)
    sat, val = rng.uniform(*s), rng.uniform(*v)
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = val * (1 - sat), val * (1 - f * sat), val * (1 - (1 - f) * sat)
    r, g, b = [(val, t, p), (q, val, p), (p, val, t), (p, q, val), (t, p, val), (val, p, q)][i]
    return int(r * 255), int(g * 255), int(b * 255)


_SKINS = ((241, 194, 160), (224, 172, 135), (198, 134, 96), (161, 102, 70), (110, 70, 50))
_HAIRS = ((20, 16, 14), (60, 40, 25), (110, 75, 40), (180, 150, 90), (120, 120, 120))


def make_look(rng: np.random.Generator) -> Look:
    """Draw a random identity look."""
    grey = rng.uniform() < 0.25
    shirt = _hsv(rng, s=(0.0, 0.1)) if grey else _hsv(rng)
    return Look(
        shirt=shirt,
        shirt2=_hsv(rng),
        pattern=str(rng.choice(["solid", "solid", "hstripes", "vstripes", "checks"])),
        stripe=int(rng.integers(3, 6)) * SS,
        long_sleeves=bool(rng.uniform() < 0.5),
        trousers=_hsv(rng, s=(0.1, 0.8), v=(0.12, 0.8)),
        shorts=bool(rng.uniform() < 0.25),
        skin=_SKINS[int(rng.integers(len(_SKINS)))],
        hair=_HAIRS[int(rng.integers(len(_HAIRS)))],
        long_hair=bool(rng.uniform() < 0.35),
        shoes=_hsv(rng, s=(0.0, 0.4), v=(0.05, 0.9)),
        bag=str(rng.choice(["none", "none", "backpack", "shoulder"])),
        bag_color=_hsv(rng, v=(0.1, 0.7)),
        build=float(rng.uniform(0.85, 1.2)),
    )


# ----------------------------------------------------------------------------- cameras
@dataclass(frozen=True)
class Camera:
    wall: tuple[int, int, int]
    floor: tuple[int, int, int]
    horizon: float
    pillar: tuple[int, int, int]
    pillar_period: int
    gain: float
    tint: tuple[float, float, float]
    noise: float


def make_cameras(rng: np.random.Generator) -> list[Camera]:
    """The six cameras: backgrounds and lighting."""
    cams = []
    for _ in range(NUM_CAMERAS):
        tint = rng.uniform(0.85, 1.15, size=3)
        cams.append(
            Camera(
                wall=_hsv(rng, s=(0.05, 0.5), v=(0.35, 0.9)),
                floor=_hsv(rng, s=(0.0, 0.35), v=(0.25, 0.75)),
                horizon=float(rng.uniform(0.45, 0.8)),
                pillar=_hsv(rng, s=(0.0, 0.6), v=(0.2, 0.9)),
                pillar_period=int(rng.integers(18, 40)),
                gain=float(rng.uniform(0.7, 1.25)),
                tint=(float(tint[0]), float(tint[1]), float(tint[2])),
                noise=float(rng.uniform(2, 7)),
            )
        )
    return cams


def render_background(cam: Camera, rng: np.random.Generator) -> np.ndarray:
    """A ``(H*SS, W*SS, 3)`` float background for one frame of ``cam``."""
    h, w = H * SS, W * SS
    yy = np.linspace(0, 1, h)[:, None, None]
    img = np.where(yy < cam.horizon, np.array(cam.wall), np.array(cam.floor)).astype(np.float32)
    img = img * (0.85 + 0.3 * yy)  # vertical shading
    img = np.broadcast_to(img, (h, w, 3)).copy()
    period = cam.pillar_period * SS
    shift = int(rng.integers(0, period))
    xx = (np.arange(w) + shift) % period
    pillar = xx < period // 3
    top = int(cam.horizon * h)
    img[:top, pillar] = np.array(cam.pillar, dtype=np.float32)
    # floor tiles
    tile = (
        (np.arange(h)[:, None] // (7 * SS) + (np.arange(w)[None] + shift) // (9 * SS)) % 2
    ).astype(np.float32)
    img[top:] *= (0.92 + 0.08 * tile[top:])[..., None]
    return img


# ----------------------------------------------------------------------------- poses
def sample_pose(rng: np.random.Generator, view: str | None = None) -> np.ndarray:
    """Draw one figure's 18 keypoints as float ``(y, x)`` in a 128x64 frame.

    Occlusion by view is applied (``-1``); image-boundary clipping is left to the caller.
    """
    view = view or str(rng.choice(VIEWS))
    s = rng.uniform(0.86, 1.0)  # scale: 1.0 = 124 px from head top to ankles
    top = rng.uniform(2, 10)
    cx = W / 2 + rng.uniform(-4, 4)
    walk = rng.uniform() < 0.65
    phase = rng.uniform(0, 2 * np.pi)
    stride = (rng.uniform(6, 13) if walk else rng.uniform(0, 2)) * s
    swing = np.sin(phase)

    def y(v: float) -> float:
        return top + v * s

    kp = np.full((18, 2), np.nan)
    side = view in ("left", "right")
    face = 1.0 if view == "right" else -1.0  # direction of travel in side views
    sho = (3.0 if side else 11.0) * s
    hip = (2.5 if side else 7.0) * s
    # image-x sign of the person's right side: front view -> image left
    rs = {"front": -1.0, "back": 1.0, "right": -0.3, "left": 0.3}[view]
    lean = rng.uniform(-1.5, 1.5)

    def put(name: str, yv: float, xv: float) -> None:
        kp[K.KP[name]] = (yv, xv)

    put("neck", y(22), cx + lean)
    put("Rsho", y(25), cx + lean + rs * sho)
    put("Lsho", y(25), cx + lean - rs * sho)
    put("Rhip", y(63), cx + rs * hip)
    put("Lhip", y(63), cx - rs * hip)
    # legs: swing along the direction of travel (side) or small lateral motion (front/back)
    for name, sgn in (("R", 1.0), ("L", -1.0)):
        hx = kp[K.KP[f"{name}hip"], 1]
        sw = sgn * swing * stride
        if side:
            knee_x, ank_x = hx + face * sw * 0.6, hx + face * sw
            bend = max(0.0, -sw) * 0.25
        else:
            knee_x, ank_x = hx + sw * 0.12, hx + sw * 0.18
            bend = max(0.0, -sw) * 0.35
        put(f"{name}kne", y(89) - bend, knee_x)
        put(f"{name}ank", y(116) - 2.0 * bend, ank_x)
    # arms: opposite to legs, sometimes bent (phone, bag strap)
    for name, sgn in (("R", -1.0), ("L", 1.0)):
        sx = kp[K.KP[f"{name}sho"], 1]
        sw = sgn * swing * stride * 0.8
        out = rs * (1 if name == "R" else -1) * (0 if side else rng.uniform(1.5, 4) * s)
        if side:
            ex, wx = sx + face * sw * 0.5, sx + face * sw
        else:
            ex, wx = sx + out, sx + out * 1.2 + sw * 0.15
        bent = rng.uniform() < 0.15
        put(f"{name}elb", y(43), ex)
        if bent:
            put(
                f"{name}wri",
                y(40),
                ex + (face if side else -rs * (1 if name == "R" else -1)) * 9 * s,
            )
        else:
            put(f"{name}wri", y(60), wx)
    # head
    hx = cx + lean * 1.5
    if view == "front":
        put("nose", y(13), hx)
        put("Reye", y(10), hx + rs * 3 * s)
        put("Leye", y(10), hx - rs * 3 * s)
        put("Rear", y(11), hx + rs * 6 * s)
        put("Lear", y(11), hx - rs * 6 * s)
    elif view == "back":
        put("Rear", y(11), hx + rs * 6 * s)
        put("Lear", y(11), hx - rs * 6 * s)
    else:  # side: the near side is the right side when travelling right
        near = "R" if view == "right" else "L"
        put("nose", y(13), hx + face * 6 * s)
        put(f"{near}eye", y(10), hx + face * 4 * s)
        put(f"{near}ear", y(11), hx - face * 1 * s)
    kp += rng.normal(0, 0.6, size=kp.shape)
    return kp


def _view_of(kp: np.ndarray) -> str:
    """Recover the view a pose was drawn in from its keypoints (for drawing order)."""
    rsho, lsho = kp[K.KP["Rsho"], 1], kp[K.KP["Lsho"], 1]
    if abs(rsho - lsho) < 10:
        nose = kp[K.KP["nose"], 1]
        neck = kp[K.KP["neck"], 1]
        return "right" if np.nan_to_num(nose - neck) >= 0 else "left"
    return "front" if rsho < lsho else "back"


# ----------------------------------------------------------------------------- drawing
class _Canvas:
    """Composites masked fills onto a supersampled float image."""

    def __init__(self, bg: np.ndarray) -> None:
        self.img = bg

    def paint(self, draw_fn: Callable[[ImageDraw.ImageDraw], None], fill: np.ndarray) -> np.ndarray:
        m = Image.new("L", (W * SS, H * SS), 0)
        draw_fn(ImageDraw.Draw(m))
        a = np.asarray(m, dtype=np.float32)[..., None] / 255.0
        self.img = self.img * (1 - a) + fill * a
        return a[..., 0]


def _pt(kp: np.ndarray, name: str) -> tuple[float, float]:
    yv, xv = kp[K.KP[name]]
    return float(xv * SS), float(yv * SS)


def _limb(a: tuple[float, float], b: tuple[float, float], width: float):
    r = width / 2

    def fn(d: ImageDraw.ImageDraw) -> None:
        d.line([a, b], fill=255, width=int(round(width)))
        for p in (a, b):
            d.ellipse([p[0] - r, p[1] - r, p[0] + r, p[1] + r], fill=255)

    return fn


def _solid(c: tuple[int, int, int]) -> np.ndarray:
    return np.array(c, dtype=np.float32)


def _pattern(look: Look, shade: float = 1.0) -> np.ndarray:
    h, w = H * SS, W * SS
    a, b = _solid(look.shirt) * shade, _solid(look.shirt2) * shade
    yy, xx = np.mgrid[0:h, 0:w]
    s = look.stripe
    if look.pattern == "hstripes":
        sel = (yy // s) % 2 == 0
    elif look.pattern == "vstripes":
        sel = (xx // s) % 2 == 0
    elif look.pattern == "checks":
        sel = ((yy // s) + (xx // s)) % 2 == 0
    else:
        return np.broadcast_to(a, (h, w, 3))
    return np.where(sel[..., None], a, b)


def draw_person(kp: np.ndarray, look: Look, bg: np.ndarray) -> np.ndarray:
    """Draw a figure with keypoints ``kp`` (float ``(y, x)``; NaN = occluded) over ``bg``."""
    view = _view_of(kp)
    side = view in ("left", "right")
    c = _Canvas(bg)
    b = look.build * SS
    limb_w, leg_w = 5.0 * b, 6.4 * b
    far, near = (("L", "R") if view == "right" else ("R", "L")) if side else ("R", "L")
    shirt = _pattern(look)
    sleeve = lambda shade: _solid(look.shirt) * shade  # noqa: E731
    # longest hair and backpack sit behind the body in front view
    neck, rsho, lsho = _pt(kp, "neck"), _pt(kp, "Rsho"), _pt(kp, "Lsho")
    rhip, lhip = _pt(kp, "Rhip"), _pt(kp, "Lhip")
    head_c = (neck[0], neck[1] - 11 * SS * (rhip[1] - neck[1]) / (41 * SS))
    head_r = 6.2 * SS * (rhip[1] - neck[1]) / (41 * SS)
    if look.long_hair and view != "back":
        c.paint(
            lambda d: d.rectangle(
                [head_c[0] - head_r, head_c[1], head_c[0] + head_r, head_c[1] + 2.4 * head_r],
                fill=255,
            ),
            _solid(look.hair),
        )

    def draw_leg(sidename: str, shade: float) -> None:
        hip, knee, ank = (
            _pt(kp, f"{sidename}hip"),
            _pt(kp, f"{sidename}kne"),
            _pt(kp, f"{sidename}ank"),
        )
        c.paint(_limb(hip, knee, leg_w), _solid(look.trousers) * shade)
        lower = _solid(look.skin) if look.shorts else _solid(look.trousers)
        c.paint(_limb(knee, ank, leg_w * 0.9), lower * shade)
        fx = 3.0 * SS * ({"right": 1, "left": -1}.get(view, 0))
        c.paint(
            _limb(ank, (ank[0] + fx, ank[1] + 2 * SS), leg_w * 0.95), _solid(look.shoes) * shade
        )

    def draw_arm(sidename: str, shade: float) -> None:
        sho, elb, wri = (
            _pt(kp, f"{sidename}sho"),
            _pt(kp, f"{sidename}elb"),
            _pt(kp, f"{sidename}wri"),
        )
        c.paint(_limb(sho, elb, limb_w), sleeve(shade))
        fore = sleeve(shade) if look.long_sleeves else _solid(look.skin) * shade
        c.paint(_limb(elb, wri, limb_w * 0.85), fore)
        r = limb_w * 0.55
        c.paint(
            lambda d: d.ellipse([wri[0] - r, wri[1] - r, wri[0] + r, wri[1] + r], fill=255),
            _solid(look.skin) * shade,
        )

    # far side first
    if side:
        draw_arm(far, 0.75)
        draw_leg(far, 0.75)
        if look.bag == "backpack":
            back = -1 if view == "right" else 1
            bx = neck[0] + back * 6 * SS * look.build
            c.paint(
                lambda d: d.rounded_rectangle(
                    [bx - 4 * SS, neck[1] + 4 * SS, bx + 4 * SS, neck[1] + 30 * SS],
                    radius=3 * SS,
                    fill=255,
                ),
                _solid(look.bag_color),
            )
    else:
        draw_leg("R", 1.0)
        draw_leg("L", 1.0)
    # torso
    pad = 2.0 * SS * look.build
    torso = [
        (rsho[0] - np.sign(lsho[0] - rsho[0]) * pad, rsho[1] - pad),
        (lsho[0] + np.sign(lsho[0] - rsho[0]) * pad, lsho[1] - pad),
        (lhip[0] + np.sign(lhip[0] - rhip[0]) * pad, lhip[1] + 2 * SS),
        (rhip[0] - np.sign(lhip[0] - rhip[0]) * pad, rhip[1] + 2 * SS),
    ]
    if side:  # a side torso is a slab around the spine
        depth = 7.0 * SS * look.build
        mid_top, mid_bot = neck, ((rhip[0] + lhip[0]) / 2, (rhip[1] + lhip[1]) / 2)
        torso = [
            (mid_top[0] - depth, mid_top[1] + SS),
            (mid_top[0] + depth, mid_top[1] + SS),
            (mid_bot[0] + depth * 0.9, mid_bot[1] + 2 * SS),
            (mid_bot[0] - depth * 0.9, mid_bot[1] + 2 * SS),
        ]
    c.paint(lambda d: d.polygon(torso, fill=255), shirt)
    if side:
        draw_leg(near, 1.0)
    if look.bag == "backpack" and view == "back":
        x0, x1 = min(rsho[0], lsho[0]) + 3 * SS, max(rsho[0], lsho[0]) - 3 * SS
        c.paint(
            lambda d: d.rounded_rectangle(
                [x0, neck[1] + 5 * SS, x1, neck[1] + 32 * SS], radius=3 * SS, fill=255
            ),
            _solid(look.bag_color),
        )
    if look.bag == "backpack" and view == "front":
        for sx in (rsho, lsho):
            c.paint(
                _limb(sx, (sx[0] * 0.8 + neck[0] * 0.2, sx[1] + 22 * SS), 2 * SS),
                _solid(look.bag_color),
            )
    if look.bag == "shoulder":
        hx = rhip if view != "left" else lhip
        c.paint(_limb(lsho if view != "left" else rsho, hx, 1.6 * SS), _solid(look.bag_color) * 0.8)
        c.paint(
            lambda d: d.rectangle(
                [hx[0] - 5 * SS, hx[1] - 4 * SS, hx[0] + 5 * SS, hx[1] + 6 * SS], fill=255
            ),
            _solid(look.bag_color),
        )
    if side:
        draw_arm(near, 1.0)
    else:
        draw_arm("R", 1.0)
        draw_arm("L", 1.0)
    # neck and head
    c.paint(_limb(neck, head_c, 4 * SS), _solid(look.skin) * 0.9)
    c.paint(
        lambda d: d.ellipse(
            [
                head_c[0] - head_r,
                head_c[1] - head_r * 1.1,
                head_c[0] + head_r,
                head_c[1] + head_r * 1.1,
            ],
            fill=255,
        ),
        _solid(look.skin),
    )
    # hair: a cap over the top of the head; the whole back of the head from behind
    if view == "back":
        c.paint(
            lambda d: d.ellipse(
                [
                    head_c[0] - head_r,
                    head_c[1] - head_r * 1.15,
                    head_c[0] + head_r,
                    head_c[1] + head_r * (1.6 if look.long_hair else 1.0),
                ],
                fill=255,
            ),
            _solid(look.hair),
        )
    else:
        c.paint(
            lambda d: d.chord(
                [
                    head_c[0] - head_r * 1.05,
                    head_c[1] - head_r * 1.2,
                    head_c[0] + head_r * 1.05,
                    head_c[1] + head_r * 0.7,
                ],
                180,
                360,
                fill=255,
            ),
            _solid(look.hair),
        )
    return c.img


def finish(img: np.ndarray, cam: Camera, rng: np.random.Generator) -> Image.Image:
    """Apply the camera's lighting and noise, downsample, and return a 64x128 RGB image."""
    img = img * cam.gain * np.array(cam.tint, dtype=np.float32) * rng.uniform(0.92, 1.08)
    small = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).resize((W, H), Image.BILINEAR)
    arr = np.asarray(small, dtype=np.float32) + rng.normal(0, cam.noise, size=(H, W, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def to_annotation(kp: np.ndarray, drop_prob: float, rng: np.random.Generator) -> np.ndarray:
    """Round to int ``(y, x)``, mark occluded, out-of-frame and randomly dropped points ``-1``."""
    out = np.full((18, 2), K.MISSING, dtype=np.int64)
    ok = ~np.isnan(kp).any(axis=1)
    r = np.round(np.nan_to_num(kp)).astype(np.int64)
    ok &= (r[:, 0] >= 0) & (r[:, 0] < H) & (r[:, 1] >= 0) & (r[:, 1] < W)
    ok &= rng.uniform(size=18) >= drop_prob
    out[ok] = r[ok]
    return out


# ----------------------------------------------------------------------------- dataset
@dataclass
class _Shot:
    pid: int
    cam: int
    seq: int
    frame: int
    idx: int
    kind: str  # person | junk

    @property
    def name(self) -> str:
        pid = "-1" if self.pid < 0 else f"{self.pid:04d}"
        return f"{pid}_c{self.cam + 1}s{self.seq}_{self.frame:06d}_{self.idx:02d}.jpg"


def make_synthetic(
    out: str | os.PathLike,
    ids: int = 64,
    seed: int = 0,
    test_pairs: int = 400,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Write the embedded dataset: ``ids`` training ids and as many test ids, Market-1501 layout.

    Writes ``bounding_box_train/``, ``bounding_box_test/`` (with distractors ``0000`` and junk
    ``-1``), ``query/``, ``annotations/market-annotation-{train,test}.csv``,
    ``annotations/market-pairs-test.csv`` and ``info.json`` into ``out``. The folder is built
    next to ``out`` and renamed into place, so a killed run leaves nothing half-written.

    Args:
        out: destination folder; must not exist or be empty.
        ids: number of training ids (the test split gets the same number).
        seed: random seed; the same ``(ids, seed)`` gives byte-identical files.
        test_pairs: number of same-id ``(from, to)`` test pairs to sample.
        progress: called as ``progress(done, total)`` after each image.

    Returns:
        A summary dict (image counts per split).

    Example:
        >>> summary = make_synthetic("data/synthetic", ids=8)  # doctest: +SKIP
    """
    if ids < 2:
        raise UserError(f"--ids must be at least 2, got {ids}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"output folder exists and is not empty: {out}")
    rng = np.random.default_rng(seed)
    cams = make_cameras(rng)
    pids = rng.choice(np.arange(1, 1502), size=2 * ids, replace=False)
    train_pids, test_pids = sorted(pids[:ids].tolist()), sorted(pids[ids:].tolist())
    looks = {int(p): make_look(np.random.default_rng([seed, int(p)])) for p in pids}

    plan: dict[str, list[_Shot]] = {"train": [], "query": [], "gallery": []}
    frame = 0

    def shots(pid: int) -> list[tuple[int, list[_Shot]]]:
        nonlocal frame
        r = np.random.default_rng([seed, pid, 1])
        cams_seen = sorted(
            r.choice(NUM_CAMERAS, size=int(r.integers(2, 5)), replace=False).tolist()
        )
        per_cam = []
        for cam in cams_seen:
            n = int(r.integers(3, 7))
            seq = int(r.integers(1, 7))
            lst = []
            for i in range(n):
                frame += int(r.integers(20, 400))
                lst.append(_Shot(pid, cam, seq, frame, 1 + i % 8, "person"))
            per_cam.append((cam, lst))
        return per_cam

    for pid in train_pids:
        for _, lst in shots(pid):
            plan["train"].extend(lst)
    for pid in test_pids:
        for _, lst in shots(pid):
            plan["query"].append(lst[0])
            plan["gallery"].extend(lst[1:])
    extra = np.random.default_rng([seed, 2])
    for j in range(max(2, ids // 4)):  # distractors (0000) and junk (-1)
        frame += 37
        cam = int(extra.integers(NUM_CAMERAS))
        plan["gallery"].append(_Shot(0, cam, 1, frame, 1, "person"))
        plan["gallery"].append(_Shot(-1, cam, 1, frame + 3, 1 + j % 8, "junk"))

    with atomic_path(out) as tmp:
        folders = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
        for f in (*folders.values(), "annotations"):
            (tmp / f).mkdir(parents=True)
        total = sum(len(v) for v in plan.values())
        done = 0
        ann: dict[str, dict[str, np.ndarray]] = {"train": {}, "gallery": {}}
        for split, lst in plan.items():
            for shot in lst:
                r = np.random.default_rng([seed, 3, shot.frame, shot.cam, max(shot.pid, 0) + 1])
                cam = cams[shot.cam]
                bg = render_background(cam, r)
                if shot.kind == "junk":
                    kp_ann = np.full((18, 2), K.MISSING, dtype=np.int64)
                    img = finish(bg, cam, r)
                else:
                    look = looks[shot.pid] if shot.pid > 0 else make_look(r)
                    kp = sample_pose(r)
                    img = finish(draw_person(kp, look, bg), cam, r)
                    kp_ann = to_annotation(kp, drop_prob=0.03, rng=r)
                    if r.uniform() < 0.03:  # detector found nobody
                        kp_ann[:] = K.MISSING
                img.save(tmp / folders[split] / shot.name, format="JPEG", quality=92)
                if split in ann:
                    ann[split][shot.name] = kp_ann
                done += 1
                if progress:
                    progress(done, total)
        K.write_annotations(
            tmp / "annotations" / Market1501.annotation_files["train"], ann["train"]
        )
        K.write_annotations(
            tmp / "annotations" / Market1501.annotation_files["gallery"], ann["gallery"]
        )

        # test pairs: same-id gallery pairs with a valid pose at both ends
        by_pid: dict[int, list[str]] = {}
        for shot in plan["gallery"]:
            if shot.pid > 0 and K.is_valid_pose(ann["gallery"][shot.name]):
                by_pid.setdefault(shot.pid, []).append(shot.name)
        candidates = [(a, b) for names in by_pid.values() for a in names for b in names if a != b]
        pr = np.random.default_rng([seed, 4])
        take = pr.choice(len(candidates), size=min(test_pairs, len(candidates)), replace=False)
        write_pairs(
            tmp / "annotations" / Market1501.pairs_file, [candidates[i] for i in sorted(take)]
        )
        summary = {
            "generator": "reidaug.data.synthetic",
            "ids": ids,
            "seed": seed,
            "images": {k: len(v) for k, v in plan.items()},
            "test_pairs": int(len(take)),
        }
        write_json(tmp / "info.json", summary)
    return summary
