"""Pose annotations for any folder of person crops, with one of two backends.

- ``mediapipe`` (:mod:`reidaug.data.mediapipe_pose`): MediaPipe's pose landmarker, whose model
  ships inside its wheel (the ``reidaug[pose]`` extra), so it runs out of the box.
- ``keypointrcnn``: torchvision's keypoint R-CNN with weights the user brings (a file or the
  torch hub cache; nothing is downloaded). It predicts the 17 COCO keypoints, which
  :func:`coco17_to_coco18` maps to the 18-point OpenPose / COCO-18 order of the PG2-family
  annotation files (the neck is the midpoint of the shoulders when both are confident).

A backend is any callable from a list of ``uint8 (H, W, 3)`` crops to one ``(18, 2)`` ``(y, x)``
array per crop, or ``None`` where it found nobody (:class:`PoseBackend`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image

from reidaug.atomic import atomic_path
from reidaug.data.keypoints import (
    KEYPOINT_NAMES,
    KP,
    LANDMARK_NAMES,
    LIMBS,
    MISSING,
    NUM_KEYPOINTS,
    check_name,
    present,
    read_annotations,
    write_annotations,
)
from reidaug.data.pairs import image_error
from reidaug.errors import UserError
from reidaug.names import KEYPOINTRCNN_WEIGHTS, PoseBackendName
from reidaug.weights import find, load_state

WEIGHTS_FILE = KEYPOINTRCNN_WEIGHTS
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")

COCO17_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)

#: For each COCO-18 keypoint, its COCO-17 index (``None`` for the neck, which is derived).
COCO18_FROM_COCO17: tuple[int | None, ...] = tuple(
    None if (long := LANDMARK_NAMES[n]) is None else COCO17_NAMES.index(long)
    for n in KEYPOINT_NAMES
)


def coco17_to_coco18(xy: np.ndarray, scores: np.ndarray, min_score: float) -> np.ndarray:
    """Map one person's COCO-17 keypoints to COCO-18 ``(y, x)`` rows.

    Args:
        xy: ``(17, 2)`` pixel coordinates ``(x, y)`` as the detector returns them.
        scores: ``(17,)`` keypoint scores (keypoint R-CNN's heatmap logits).
        min_score: points scoring below it become ``-1``.

    Returns:
        ``(18, 2)`` int array of rounded ``(y, x)``, ``-1`` where missing. The neck is the
        midpoint of the two shoulders when both pass ``min_score``, else missing.
    """
    xy, scores = np.asarray(xy, float), np.asarray(scores, float)
    out = np.full((NUM_KEYPOINTS, 2), MISSING, np.int64)
    for i, j in enumerate(COCO18_FROM_COCO17):
        if j is not None and scores[j] >= min_score:
            out[i] = np.round(xy[j, ::-1])
    ls, rs = COCO17_NAMES.index("left_shoulder"), COCO17_NAMES.index("right_shoulder")
    if scores[ls] >= min_score and scores[rs] >= min_score:
        out[KP["neck"]] = np.round((xy[ls, ::-1] + xy[rs, ::-1]) / 2)
    return out


def pick_person(boxes: np.ndarray, scores: np.ndarray, height: int, width: int) -> int | None:
    """Index of the most confident detection whose box covers the image centre, else ``None``."""
    cy, cx = height / 2, width / 2
    best, best_score = None, -np.inf
    for k, ((x1, y1, x2, y2), s) in enumerate(zip(boxes, scores, strict=True)):
        if x1 <= cx <= x2 and y1 <= cy <= y2 and s > best_score:
            best, best_score = k, s
    return best


def find_weights(weights: str | os.PathLike | None) -> Path:
    """The keypoint R-CNN weights: ``weights``, ``$REIDAUG_KEYPOINT_WEIGHTS`` or the hub cache."""
    return find("keypoint R-CNN", WEIGHTS_FILE, weights, "--weights", "REIDAUG_KEYPOINT_WEIGHTS")


def build_detector(
    weights: str | os.PathLike | None = None,
    state_dict: dict | None = None,
    min_size: int = 800,
    max_size: int = 1333,
) -> torch.nn.Module:
    """torchvision's ``keypointrcnn_resnet50_fpn`` (eval mode) with local weights.

    ``min_size``/``max_size`` are its resize bounds; 128x64 crops are upscaled to ``min_size``.
    ``state_dict`` replaces the file (tests use random weights).
    """
    from torchvision.models.detection import keypointrcnn_resnet50_fpn

    model = keypointrcnn_resnet50_fpn(
        weights=None,
        weights_backbone=None,
        num_classes=2,
        num_keypoints=17,
        min_size=min_size,
        max_size=max_size,
    )
    if state_dict is None:
        state_dict = load_state(find_weights(weights), "keypoint R-CNN")
    try:
        model.load_state_dict(state_dict)
    except RuntimeError:
        raise UserError(
            "the weights do not fit keypointrcnn_resnet50_fpn (COCO, 17 keypoints)"
        ) from None
    return model.eval()


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files of ``folder`` (not recursive), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


class PoseBackend(Protocol):
    """Keypoints of the centre person of each crop: ``(18, 2)`` ``(y, x)``, or None."""

    name: str

    def __call__(self, images: list[np.ndarray]) -> list[np.ndarray | None]: ...

    def close(self) -> None: ...


class KeypointRCNN:
    """The keypoint R-CNN backend: a detector and its keypoint score threshold."""

    name = "keypointrcnn"

    def __init__(
        self, detector: torch.nn.Module, min_score: float = 1.0, device: torch.device | str = "cpu"
    ) -> None:
        self.detector, self.min_score, self.device = detector.to(device), min_score, device

    @torch.no_grad()
    def landmarks(self, images: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray] | None]:
        """Per crop, the centre person's ``((17, 2) (x, y), (17,) scores)``, or None."""
        tensors = [
            torch.from_numpy(np.ascontiguousarray(a))
            .permute(2, 0, 1)
            .float()
            .div(255)
            .to(self.device)
            for a in images
        ]
        out: list[tuple[np.ndarray, np.ndarray] | None] = []
        for t, det in zip(tensors, self.detector(tensors), strict=True):
            k = pick_person(det["boxes"].cpu().numpy(), det["scores"].cpu().numpy(), *t.shape[1:])
            out.append(
                None
                if k is None
                else (
                    det["keypoints"][k, :, :2].cpu().numpy(),
                    det["keypoints_scores"][k].cpu().numpy(),
                )
            )
        return out

    def __call__(self, images: list[np.ndarray]) -> list[np.ndarray | None]:
        return [
            None if r is None else coco17_to_coco18(*r, self.min_score)
            for r in self.landmarks(images)
        ]

    def close(self) -> None:
        """Nothing to release (the detector is an ordinary module)."""


Backend = PoseBackendName


def build_backend(
    backend: Backend = "auto",
    weights: str | os.PathLike | None = None,
    *,
    min_score: float | None = None,
    min_size: int | None = None,
    min_visibility: float | None = None,
    scale: float | None = None,
    framings: tuple[tuple[float, float], ...] | None = None,
    correct: bool | None = None,
    device: torch.device | str = "cpu",
    state_dict: dict | None = None,
) -> PoseBackend:
    """The backend by name, with its own options (``None``: its default).

    ``auto`` is keypoint R-CNN when ``weights`` (or ``state_dict``) are given, else MediaPipe
    when installed, else keypoint R-CNN from the torch hub cache. An option that belongs to the
    other backend is refused rather than ignored.
    """
    from reidaug.data import mediapipe_pose as mpp

    if backend == "auto":
        given = weights is not None or state_dict is not None
        backend = "keypointrcnn" if given or not mpp.available() else "mediapipe"
        if backend == "keypointrcnn" and not given:
            try:
                find_weights(None)
            except UserError as e:
                raise UserError(f"{e}; or install the MediaPipe backend: {mpp.PIP_HINT}") from None
    mp_opts = {
        "--min-visibility": min_visibility,
        "--scale": scale,
        "--framing": framings,
        "--correction/--no-correction": correct,
    }
    rcnn_opts = {"--weights": weights, "--min-score": min_score, "--min-size": min_size}
    wrong = rcnn_opts if backend == "mediapipe" else mp_opts
    if backend == "mediapipe" and state_dict is not None:
        wrong = {**wrong, "state_dict": state_dict}
    if given := [k for k, v in wrong.items() if v is not None]:
        raise UserError(f"{', '.join(given)} do(es) not apply to the {backend} backend")
    if backend == "mediapipe":
        kw = {
            "min_visibility": min_visibility,
            "scale": scale,
            "framings": framings,
            "correct": correct,
        }
        return mpp.MediaPipePose(**{k: v for k, v in kw.items() if v is not None})
    if backend != "keypointrcnn":
        raise UserError(f"unknown pose backend {backend!r}: auto, mediapipe or keypointrcnn")
    detector = build_detector(weights, state_dict, min_size=800 if min_size is None else min_size)
    return KeypointRCNN(detector, 1.0 if min_score is None else min_score, device)


def read_crop(path: Path) -> np.ndarray:
    """One image as ``uint8 (H, W, 3)`` RGB; an undecodable file is a :class:`UserError`."""
    try:
        with Image.open(path) as im:
            return np.array(im.convert("RGB"))
    except (OSError, SyntaxError) as e:
        raise image_error(path, e) from None


def estimate_poses(
    images: Sequence[Path],
    backend: PoseBackend,
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Keypoints of the centre person of every image.

    Returns:
        ``({file name: (18, 2) (y, x)}, summary)`` with summary ``images``, ``detections``
        (images where a centre person was found) and ``all_missing`` (rows of only ``-1``).
    """
    out: dict[str, np.ndarray] = {}
    found = 0
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        for p, kps in zip(chunk, backend([read_crop(p) for p in chunk]), strict=True):
            found += kps is not None
            out[p.name] = np.full((NUM_KEYPOINTS, 2), MISSING, np.int64) if kps is None else kps
        if progress:
            progress(min(start + batch_size, len(images)), len(images))
    missing = sum(bool((k == MISSING).all()) for k in out.values())
    return out, {"images": len(images), "detections": found, "all_missing": missing}


def estimate(
    images: str | os.PathLike,
    out: str | os.PathLike,
    backend: Backend = "auto",
    weights: str | os.PathLike | None = None,
    *,
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
    **options: object,
) -> dict[str, int | str]:
    """Annotate every image of a folder and write a PG2-format CSV (atomically).

    ``options`` are the backend's (see :func:`build_backend`). The summary adds ``backend``.

    Example:
        >>> estimate("Market-1501-v15.09.15/bounding_box_train", "train.csv")  # doctest: +SKIP
        {'images': 12936, 'detections': ..., 'all_missing': ..., 'backend': 'mediapipe'}
    """
    files = list_images(images)
    for f in files:  # before any work: a name the CSV cannot hold would fail at the end
        check_name(f.name)
    model = build_backend(backend, weights, **options)  # type: ignore[arg-type]
    try:
        kps, summary = estimate_poses(files, model, batch_size, progress)
    finally:
        model.close()
    write_annotations(out, kps)  # atomic: temp file renamed into place
    return {**summary, "backend": model.name}


def estimate_folder(
    ds,
    out: str | os.PathLike | None = None,
    backend: Backend = "auto",
    weights: str | os.PathLike | None = None,
    *,
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
    **options: object,
) -> dict[str, int | str]:
    """Annotate every image of a :class:`~reidaug.data.folder.FolderDataset` on its 128x64
    crops (the frame the generators and MediaPipe's framing are tuned for) and write its pose
    file, mapped back to the original images' pixels [default ``ROOT/poses.csv``]. The summary
    adds ``backend`` and ``out``."""
    from reidaug.data.folder import write_folder_poses

    ds.check_before_run(need_annotations=False)
    crops = [ds.crops / s.name for s in ds.sources]
    model = build_backend(backend, weights, **options)  # type: ignore[arg-type]
    try:
        kps, summary = estimate_poses(crops, model, batch_size, progress)
    finally:
        model.close()
    path = write_folder_poses(ds, kps, out)
    return {**summary, "backend": model.name, "out": str(path)}


def draw_skeleton(image: np.ndarray, kps: np.ndarray) -> np.ndarray:
    """``image`` (``uint8 (H, W, 3)``) with the 23 PG2 limbs and the present keypoints drawn."""
    from skimage.draw import disk, line

    img = np.array(image, copy=True)
    h, w = img.shape[:2]
    ok = present(kps)
    for a, b in LIMBS:
        if ok[a] and ok[b]:
            rr, cc = line(*np.clip(kps[a], 0, [h - 1, w - 1]), *np.clip(kps[b], 0, [h - 1, w - 1]))
            img[rr, cc] = (255, 255, 0)
    for i in np.flatnonzero(ok):
        rr, cc = disk(tuple(kps[i]), 1.6, shape=(h, w))
        img[rr, cc] = (255, 0, 0) if KEYPOINT_NAMES[i].startswith("R") else (0, 160, 255)
    return img


def show(
    annotations: str | os.PathLike,
    images: str | os.PathLike,
    out: str | os.PathLike,
    count: int = 32,
    columns: int = 8,
    seed: int = 0,
) -> int:
    """Draw skeletons over a seeded sample of annotated images into one grid PNG; returns how
    many were drawn. Right-side points are red, left-side blue, limbs yellow."""
    kps = read_annotations(annotations)
    folder = Path(images)
    names = [n for n in kps if (folder / n).is_file()]
    if not names:
        raise UserError(f"none of the {len(kps)} annotated images is in {folder}")
    rng = np.random.default_rng(seed)
    pick = sorted(rng.choice(len(names), size=min(count, len(names)), replace=False))
    tiles = []
    for i in pick:
        with Image.open(folder / names[i]) as im:
            tiles.append(draw_skeleton(np.asarray(im.convert("RGB")), kps[names[i]]))
    h = max(t.shape[0] for t in tiles)
    w = max(t.shape[1] for t in tiles)
    tiles += [np.zeros((h, w, 3), np.uint8)] * (-len(tiles) % columns)
    padded = [np.pad(t, ((0, h - t.shape[0]), (0, w - t.shape[1]), (0, 0))) for t in tiles]
    rows = [np.concatenate(padded[r : r + columns], axis=1) for r in range(0, len(padded), columns)]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out, ".png") as tmp:
        Image.fromarray(np.concatenate(rows, axis=0)).save(tmp)
    return len(pick)
