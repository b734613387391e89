"""PG2-family keypoint annotations: 18 OpenPose / COCO-18 keypoints per image.

The CSV format (shared by PG2, Deformable GAN and Pose-Transfer) is one header line
``name:keypoints_y:keypoints_x`` followed by rows ``NAME: [y0, ..., y17]: [x0, ..., x17]``,
with ``-1`` for a keypoint that was not detected.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from reidaug.atomic import atomic_path
from reidaug.errors import UserError

#: OpenPose's COCO-18 order (``POSE_COCO_BODY_PARTS``): the person's right eye and ear come
#: first (14 REye, 15 LEye, 16 REar, 17 LEar). Pose-Transfer's code labels 14-17 the other way
#: round; the shipped Market CSVs follow OpenPose, as MediaPipe's named landmarks confirm (its
#: left ear lies within 8 px of the CSVs' point 17 far more often than of point 16).
KEYPOINT_NAMES: tuple[str, ...] = (
    "nose",
    "neck",
    "Rsho",
    "Relb",
    "Rwri",
    "Lsho",
    "Lelb",
    "Lwri",
    "Rhip",
    "Rkne",
    "Rank",
    "Lhip",
    "Lkne",
    "Lank",
    "Reye",
    "Leye",
    "Rear",
    "Lear",
)
NUM_KEYPOINTS = len(KEYPOINT_NAMES)
KP = {name: i for i, name in enumerate(KEYPOINT_NAMES)}

#: Each keypoint as the landmark name COCO-17 and MediaPipe detectors use (the person's own left
#: and right); ``None`` for the neck, which detectors derive from the shoulders.
LANDMARK_NAMES: dict[str, str | None] = {
    "nose": "nose",
    "neck": None,
    "Rsho": "right_shoulder",
    "Relb": "right_elbow",
    "Rwri": "right_wrist",
    "Lsho": "left_shoulder",
    "Lelb": "left_elbow",
    "Lwri": "left_wrist",
    "Rhip": "right_hip",
    "Rkne": "right_knee",
    "Rank": "right_ankle",
    "Lhip": "left_hip",
    "Lkne": "left_knee",
    "Lank": "left_ankle",
    "Leye": "left_eye",
    "Reye": "right_eye",
    "Lear": "left_ear",
    "Rear": "right_ear",
}

#: Index permutation that swaps left and right keypoints (used by a horizontal flip).
FLIP_PERMUTATION: tuple[int, ...] = tuple(
    KP[n.replace("R", "#").replace("L", "R").replace("#", "L")] if n[0] in "RL" else i
    for i, n in enumerate(KEYPOINT_NAMES)
)

#: The 23 limbs of the OpenPose-18 skeleton as PG2 draws its pose mask (0-based indices),
#: torso diagonals and ear links included.
LIMBS: tuple[tuple[int, int], ...] = tuple(
    (a - 1, b - 1)
    for a, b in (
        (2, 3),
        (2, 6),
        (3, 4),
        (4, 5),
        (6, 7),
        (7, 8),
        (2, 9),
        (9, 10),
        (10, 11),
        (2, 12),
        (12, 13),
        (13, 14),
        (2, 1),
        (1, 15),
        (15, 17),
        (1, 16),
        (16, 18),
        (2, 17),
        (2, 18),
        (9, 12),
        (12, 6),
        (9, 3),
        (17, 18),
    )
)

#: Keypoints that must all be present for a pose to be usable (shoulders and hips).
REQUIRED_FOR_VALID = (KP["Rsho"], KP["Lsho"], KP["Rhip"], KP["Lhip"])

HEADER = "name:keypoints_y:keypoints_x"
MISSING = -1
_ROW = re.compile(r"^(?P<name>[^:]+): \[(?P<y>[-\d, ]*)\]: \[(?P<x>[-\d, ]*)\]$")


#: Largest coordinate an annotation row may hold (far outside any crop; guards integer overflow).
MAX_COORD = 1_000_000


def parse_row(line: str, where: str = "") -> tuple[str, np.ndarray]:
    """Parse one annotation row into ``(name, keypoints)``.

    Args:
        line: the row without its newline.
        where: ``file:line`` used in the error message.

    Returns:
        The image name and an ``(18, 2)`` int array of ``(y, x)``, ``-1`` where missing.
    """
    m = _ROW.match(line)
    err = f"malformed annotation row at {where}: expected 'NAME: [18 ys]: [18 xs]'"
    if m is None:
        raise UserError(err)
    try:
        ys = [int(v) for v in m["y"].split(",")]
        xs = [int(v) for v in m["x"].split(",")]
    except ValueError:
        raise UserError(err) from None
    if len(ys) != NUM_KEYPOINTS or len(xs) != NUM_KEYPOINTS:
        raise UserError(f"{err} (got {len(ys)} ys and {len(xs)} xs)")
    huge = [v for v in (*ys, *xs) if abs(v) > MAX_COORD]
    if huge:
        raise UserError(
            f"annotation row at {where}: coordinate {huge[0]} is out of range "
            f"(|value| <= {MAX_COORD})"
        )
    kps = np.stack([np.array(ys), np.array(xs)], axis=1).astype(np.int64)
    kps[(kps[:, 0] < 0) | (kps[:, 1] < 0)] = MISSING
    return m["name"], kps


def check_name(name: str) -> None:
    """Refuse an image name that the annotation format cannot hold (its separator ``: [`` or a
    line break would split the row)."""
    if ": [" in name or "\n" in name or "\r" in name:
        raise UserError(
            f"image name {name!r} cannot be written to an annotation CSV (it holds ': [' or a "
            "line break); rename the file"
        )


def format_row(name: str, kps: np.ndarray) -> str:
    """Format one row exactly as the shipped annotation files do."""
    check_name(name)
    ys = ", ".join(str(int(v)) for v in kps[:, 0])
    xs = ", ".join(str(int(v)) for v in kps[:, 1])
    return f"{name}: [{ys}]: [{xs}]"


def read_annotations(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read an annotation CSV into an ordered ``{name: (18, 2) int array}`` dict.

    Args:
        path: the CSV file.

    Returns:
        Keypoints per image name, in file order, ``(y, x)`` with ``-1`` for missing.

    Example:
        >>> kps = read_annotations("annotations/market-annotation-train.csv")  # doctest: +SKIP
        >>> kps["0002_c1s1_000451_03.jpg"].shape  # doctest: +SKIP
        (18, 2)
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"annotation file not found: {path}")
    out: dict[str, np.ndarray] = {}
    with open(path, encoding="utf-8", newline="") as f:
        header = f.readline().rstrip("\r\n")
        if header != HEADER:
            raise UserError(f"malformed annotation header at {path}:1: expected '{HEADER}'")
        for lineno, line in enumerate(f, start=2):
            line = line.rstrip("\r\n")
            if not line:
                continue
            name, kps = parse_row(line, f"{path}:{lineno}")
            if name in out:
                raise UserError(f"annotation row at {path}:{lineno}: {name} is annotated twice")
            out[name] = kps
    return out


def write_annotations(path: str | os.PathLike, annotations: Mapping[str, np.ndarray]) -> None:
    """Write annotations in the shipped CSV format, atomically (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(HEADER + "\n")
        for name, kps in annotations.items():
            f.write(format_row(name, np.asarray(kps)) + "\n")


def present(kps: np.ndarray) -> np.ndarray:
    """Boolean mask of detected keypoints, for ``(..., 18, 2)`` arrays."""
    kps = np.asarray(kps)
    return (kps[..., 0] >= 0) & (kps[..., 1] >= 0)


def is_valid_pose(kps: np.ndarray) -> bool | np.ndarray:
    """True where Rsho, Lsho, Rhip and Lhip are all present (works on batches)."""
    return present(kps)[..., list(REQUIRED_FOR_VALID)].all(axis=-1)


def flip_keypoints(kps: np.ndarray, width: int) -> np.ndarray:
    """Mirror keypoints left-right in an image of ``width`` and swap left/right joints.

    Args:
        kps: ``(..., 18, 2)`` array of ``(y, x)``, ``-1`` for missing.
        width: image width in pixels.

    Returns:
        A new array; missing keypoints stay ``-1``.
    """
    kps = np.asarray(kps)
    out = kps[..., list(FLIP_PERMUTATION), :].copy()
    ok = present(out)
    out[..., 1] = np.where(ok, width - 1 - out[..., 1], MISSING)
    return out


def stack(names: Iterable[str], annotations: Mapping[str, np.ndarray]) -> np.ndarray:
    """Stack the keypoints of ``names`` into an ``(N, 18, 2)`` array (all -1 if unannotated)."""
    names = list(names)
    out = np.full((len(names), NUM_KEYPOINTS, 2), MISSING, dtype=np.int64)
    for i, name in enumerate(names):
        if name in annotations:
            out[i] = annotations[name]
    return out
