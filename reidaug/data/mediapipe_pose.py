"""Pose annotations with MediaPipe's pose landmarker, whose model ships inside the wheel.

The legacy ``mp.solutions.pose`` API (``mediapipe<=0.10.21``, Apache-2.0) with
``model_complexity=1`` runs offline: ``pose_landmark_full.tflite`` and ``pose_detection.tflite``
are package data. It returns 33 landmarks; :func:`mediapipe_to_coco18` maps them by name to the
18-point OpenPose order of the PG2-family CSVs (the neck is the shoulders' midpoint).

Market crops are 128x64 and the person fills them, while MediaPipe's detector expects a person
with room around them: :func:`frame` upscales the crop and pastes it, centred, into a square grey
canvas with a margin. The framing matters most (see ``experiments/pose_agreement.py``): a 50 %
margin agrees best with the shipped annotations, and a crop where nobody is found there is tried
again with a 100 % margin and a lower detection confidence (:data:`DEFAULT_FRAMINGS`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from reidaug.data.keypoints import KEYPOINT_NAMES, KP, LANDMARK_NAMES, MISSING, NUM_KEYPOINTS
from reidaug.errors import UserError
from reidaug.names import DEFAULT_FRAMINGS, DEFAULT_MIN_VISIBILITY, DEFAULT_SCALE

#: MediaPipe's 33 pose landmarks, in its order (``mp.solutions.pose.PoseLandmark``, lower case).
MEDIAPIPE_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye_inner",
    "left_eye",
    "left_eye_outer",
    "right_eye_inner",
    "right_eye",
    "right_eye_outer",
    "left_ear",
    "right_ear",
    "mouth_left",
    "mouth_right",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_pinky",
    "right_pinky",
    "left_index",
    "right_index",
    "left_thumb",
    "right_thumb",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
)

#: For each COCO-18 index, its MediaPipe landmark index (``None`` for the derived neck).
COCO18_FROM_MEDIAPIPE: tuple[int | None, ...] = tuple(
    None if (long := LANDMARK_NAMES[n]) is None else MEDIAPIPE_NAMES.index(long)
    for n in KEYPOINT_NAMES
)

# Defaults chosen from ``experiments/pose_agreement.py`` on 2,000 Market training images;
# DEFAULT_FRAMINGS: ``(margin, min_detection_confidence)`` tried in order until a person is found.
#: Longest side, in pixels, of a crop after upscaling (before the margin is added).
MAX_SIDE = 1024
#: Offsets from MediaPipe's points to OpenPose-18's, fit on Market's training annotations by
#: ``experiments/mediapipe_correction.py``.
CORRECTION_FILE = Path(__file__).with_name("mediapipe_correction.json")
PIP_HINT = "pip install 'reidaug[pose]' (mediapipe 0.10.21, CPython 3.10 to 3.12)"


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence file descriptor 2 while MediaPipe's C++ graph runs: TFLite and absl print
    start-up and per-graph warnings there that Python cannot filter. Python exceptions still
    propagate; nothing else writes during a ``process`` call."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def available() -> bool:
    """Whether ``mediapipe`` is importable (without importing it)."""
    return importlib.util.find_spec("mediapipe") is not None


def coco18_points(xy: np.ndarray, visibility: np.ndarray, min_visibility: float) -> np.ndarray:
    """One person's 33 MediaPipe landmarks as ``(18, 2)`` float COCO-18 ``(y, x)``, ``nan``
    where a landmark is less visible than ``min_visibility``; the neck is the midpoint of the
    shoulders when both are kept."""
    xy, visibility = np.asarray(xy, float), np.asarray(visibility, float)
    out = np.full((NUM_KEYPOINTS, 2), np.nan)
    for i, j in enumerate(COCO18_FROM_MEDIAPIPE):
        if j is not None and visibility[j] >= min_visibility:
            out[i] = xy[j, ::-1]
    out[KP["neck"]] = (out[KP["Lsho"]] + out[KP["Rsho"]]) / 2  # nan unless both are kept
    return out


def torso_frame(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float] | None:
    """The torso frame of ``(18, 2)`` float ``(y, x)`` points: its centre (the mean of both
    shoulders and hips), ``u`` (unit, hips to shoulders), ``v`` (unit, perpendicular to ``u``,
    towards the person's left shoulder) and its length (hip midpoint to shoulder midpoint);
    ``None`` without all four points or with a degenerate torso."""
    four = points[[KP["Rsho"], KP["Lsho"], KP["Rhip"], KP["Lhip"]]]
    if np.isnan(four).any():
        return None
    sho, hip = four[:2].mean(0), four[2:].mean(0)
    length = float(np.linalg.norm(sho - hip))
    if length < 1:
        return None
    u = (sho - hip) / length
    across = four[1] - four[0]  # right shoulder to left shoulder
    v = np.array([-u[1], u[0]])
    if across @ v < 0:
        v = -v
    return four.mean(0), u, v, length


def apply_correction(points: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Move each point by its offset, given in torso lengths along the torso frame's ``u`` and
    ``v`` (:func:`torso_frame`); points of a person without a torso frame stay."""
    f = torso_frame(points)
    if f is None:
        return points
    _, u, v, length = f
    return points + length * (offsets[:, :1] * u + offsets[:, 1:] * v)


def fit_correction(
    points: list[np.ndarray], reference: list[np.ndarray], min_count: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """Per keypoint, the median offset from MediaPipe's point to the reference's, in torso
    lengths along ``u`` and ``v`` of MediaPipe's own torso frame.

    Args:
        points: per image, :func:`coco18_points`.
        reference: per image, the reference ``(18, 2)`` int ``(y, x)``, ``-1`` missing.
        min_count: keypoints seen in fewer images get no offset.

    Returns:
        ``(offsets (18, 2), counts (18,))``.
    """
    residuals: list[list[np.ndarray]] = [[] for _ in range(NUM_KEYPOINTS)]
    for pts, ref in zip(points, reference, strict=True):
        f = torso_frame(pts)
        if f is None:
            continue
        _, u, v, length = f
        for i in range(NUM_KEYPOINTS):
            if not np.isnan(pts[i]).any() and (ref[i] >= 0).all():
                d = (ref[i] - pts[i]) / length
                residuals[i].append(np.array([d @ u, d @ v]))
    counts = np.array([len(r) for r in residuals])
    offsets = np.array(
        [np.median(r, axis=0) if len(r) >= min_count else np.zeros(2) for r in residuals]
    )
    return offsets, counts


def load_correction(path: str | os.PathLike | None = None) -> np.ndarray:
    """The shipped correction's ``(18, 2)`` offsets (:data:`CORRECTION_FILE`), or ``path``'s."""
    import json

    path = CORRECTION_FILE if path is None else path
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        offsets = np.array([data["offsets"][name] for name in KEYPOINT_NAMES], float)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"cannot read the MediaPipe pose correction {path}: {e}") from None
    if offsets.shape != (NUM_KEYPOINTS, 2) or not np.isfinite(offsets).all():
        raise UserError(f"the MediaPipe pose correction {path} does not hold 18 (u, v) offsets")
    return offsets


def mediapipe_to_coco18(
    xy: np.ndarray,
    visibility: np.ndarray,
    min_visibility: float,
    height: int,
    width: int,
    correction: np.ndarray | None = None,
) -> np.ndarray:
    """Map one person's 33 MediaPipe landmarks to COCO-18 ``(y, x)`` rows.

    Args:
        xy: ``(33, 2)`` ``(x, y)`` in the crop's pixel coordinates.
        visibility: ``(33,)`` MediaPipe's visibility in [0, 1].
        min_visibility: landmarks below it become ``-1``.
        height, width: the crop's size; landmarks that round to outside it become ``-1``
            (the shipped annotations only mark points inside the image).
        correction: ``(18, 2)`` offsets of :func:`apply_correction` towards OpenPose-18's
            conventions (:func:`load_correction`), or None for MediaPipe's own points.

    Returns:
        ``(18, 2)`` int array, ``-1`` where missing; the neck is the midpoint of the shoulders
        when both are kept.
    """
    points = coco18_points(xy, visibility, min_visibility)
    if correction is not None:
        points = apply_correction(points, correction)
    ok = ~np.isnan(points).any(axis=1)
    out = np.full((NUM_KEYPOINTS, 2), MISSING, np.int64)
    out[ok] = np.round(points[ok])
    inside = (out[:, 0] >= 0) & (out[:, 0] < height) & (out[:, 1] >= 0) & (out[:, 1] < width)
    out[~inside] = MISSING
    return out


def parse_framings(text: str) -> tuple[tuple[float, float], ...]:
    """``"0.5:0.5,1:0.2"`` -> ``((0.5, 0.5), (1.0, 0.2))``: margin:confidence pairs, in order."""
    out = []
    for part in text.split(","):
        try:
            margin, conf = (float(x) for x in part.split(":"))
        except ValueError:
            raise UserError(f"bad framing {part!r}: want MARGIN:CONFIDENCE, e.g. 0.5:0.5") from None
        out.append((margin, conf))
    return tuple(out)


def frame(image: np.ndarray, scale: float, margin: float) -> tuple[np.ndarray, float, float]:
    """Upscale ``image`` (``uint8 (H, W, 3)``) by ``scale`` (bicubic) and centre it in a square
    grey canvas whose side is ``max(H, W) * scale * (1 + 2 * margin)``.

    Returns ``(canvas, top, left)``: the canvas and the crop's offset in it, in canvas pixels.
    """
    h, w = image.shape[:2]
    sh, sw = round(h * scale), round(w * scale)
    big = np.asarray(Image.fromarray(image).resize((sw, sh), Image.BICUBIC))
    side = round(max(sh, sw) * (1 + 2 * margin))
    canvas = np.full((side, side, 3), 128, np.uint8)
    top, left = (side - sh) // 2, (side - sw) // 2
    canvas[top : top + sh, left : left + sw] = big
    return canvas, top, left


class MediaPipePose:
    """MediaPipe's pose landmarker on person crops; one instance per process, closed after use.

    Example:
        >>> with MediaPipePose() as pose:  # doctest: +SKIP
        ...     kps = pose([image])[0]  # (18, 2) (y, x), or None when nobody was found
    """

    name = "mediapipe"

    def __init__(
        self,
        min_visibility: float = DEFAULT_MIN_VISIBILITY,
        scale: float = DEFAULT_SCALE,
        framings: tuple[tuple[float, float], ...] = DEFAULT_FRAMINGS,
        complexity: int = 1,
        correct: bool = True,
    ) -> None:
        if not available():
            raise UserError(f"the mediapipe pose backend is not installed: {PIP_HINT}")
        if not 0 <= min_visibility <= 1:
            raise UserError(f"--min-visibility must lie in [0, 1], got {min_visibility}")
        if scale <= 0 or not framings or any(m < 0 or not 0 <= c <= 1 for m, c in framings):
            raise UserError(
                f"need scale > 0 and framings of margin >= 0, confidence in [0, 1]; "
                f"got {scale} and {framings}"
            )
        self.min_visibility, self.scale, self.framings = min_visibility, scale, tuple(framings)
        #: offsets towards OpenPose-18's conventions (:func:`apply_correction`), or None
        self.correction = load_correction() if correct else None
        with _quiet_native_stderr():
            import mediapipe as mp

            if not hasattr(mp, "solutions"):
                raise UserError(
                    f"mediapipe {mp.__version__} has no mp.solutions (dropped in "
                    f"0.10.30): {PIP_HINT}"
                )
            self._pose = {
                conf: mp.solutions.pose.Pose(
                    static_image_mode=True,
                    model_complexity=complexity,
                    min_detection_confidence=conf,
                )
                for conf in {c for _, c in framings}
            }
            # one blank frame through each graph while stderr is quiet: its models start on
            # their first frame, and TFLite announces its CPU delegate then
            blank = np.full((256, 256, 3), 128, np.uint8)
            for pose in self._pose.values():
                pose.process(blank)

    def landmarks(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """``((33, 2) (x, y) in crop pixels, (33,) visibility)`` from the first framing that
        finds a person, or None when none does."""
        # a large crop is scaled to at most MAX_SIDE pixels: MediaPipe aborts the process on
        # canvases of tens of megapixels
        scale = min(self.scale, MAX_SIDE / max(image.shape[:2]))
        for margin, conf in self.framings:
            canvas, top, left = frame(image, scale, margin)
            with _quiet_native_stderr():
                result = self._pose[conf].process(canvas)
            if result.pose_landmarks is not None:
                break
        else:
            return None
        side = canvas.shape[0]
        lm = result.pose_landmarks.landmark
        xy = np.array([(p.x, p.y) for p in lm], float) * side  # canvas pixels (edges at 0, side)
        xy -= (left, top)
        xy = xy / scale - 0.5  # crop pixel centres
        return xy, np.array([p.visibility for p in lm], float)

    def __call__(self, images: list[np.ndarray]) -> list[np.ndarray | None]:
        out: list[np.ndarray | None] = []
        for im in images:
            found = self.landmarks(im)
            h, w = im.shape[:2]
            out.append(
                None
                if found is None
                else mediapipe_to_coco18(*found, self.min_visibility, h, w, self.correction)
            )
        return out

    def close(self) -> None:
        with _quiet_native_stderr():
            for pose in self._pose.values():
                pose.close()

    def __enter__(self) -> MediaPipePose:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
