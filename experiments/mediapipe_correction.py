"""Fit and test the correction from MediaPipe's keypoints to the OpenPose-18 conventions of the
shipped Market annotations.

MediaPipe places hips, shoulders and knees elsewhere than OpenPose. The correction moves each
point by a per-keypoint offset in the person's own torso frame (``u``: hips to shoulders,
``v``: towards the left shoulder, both in torso lengths), the median residual over ``--fit``
training images whose shipped pose is valid. It is then measured on ``--test`` held-out test
(gallery) images, never used in the fit: detection rate, and the share of points both mark
present within 4 and 8 px (128x64), raw and corrected, overall and per keypoint.

    python experiments/mediapipe_correction.py --root ../shared/data/market1501 \\
        --fit 2000 --test 1000 --json correction.json --write-correction
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _common import market_root  # noqa: E402
from pose_agreement import agreement  # noqa: E402

from reidaug.atomic import write_json  # noqa: E402
from reidaug.data import Market1501  # noqa: E402
from reidaug.data.estimate import read_crop  # noqa: E402
from reidaug.data.keypoints import KEYPOINT_NAMES, MISSING, is_valid_pose  # noqa: E402
from reidaug.data.mediapipe_pose import (  # noqa: E402
    CORRECTION_FILE,
    DEFAULT_MIN_VISIBILITY,
    MediaPipePose,
    coco18_points,
    fit_correction,
    mediapipe_to_coco18,
)


def sample(items, shipped, n: int, seed: int) -> list:
    valid = [it for it in items if it.name in shipped and is_valid_pose(shipped[it.name])]
    rng = np.random.default_rng(seed)
    return [valid[i] for i in sorted(rng.choice(len(valid), min(n, len(valid)), replace=False))]


def landmarks(items) -> tuple[list, float]:
    t = time.perf_counter()
    with MediaPipePose(correct=False) as pose:  # raw landmarks; the fit is what is measured
        raw = [pose.landmarks(read_crop(it.path)) for it in items]
    return raw, time.perf_counter() - t


def score(raw, ref, correction) -> dict:
    ours = np.stack(
        [
            np.full((18, 2), MISSING)
            if r is None
            else mediapipe_to_coco18(*r, DEFAULT_MIN_VISIBILITY, 128, 64, correction)
            for r in raw
        ]
    )
    return agreement(ours, ref, np.array([r is not None for r in raw]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=market_root())
    ap.add_argument("--fit", type=int, default=2000, help="training images to fit on")
    ap.add_argument("--test", type=int, default=1000, help="held-out test images to score")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="write every figure here")
    ap.add_argument(
        "--write-correction", action="store_true", help=f"write the fit to {CORRECTION_FILE.name}"
    )
    args = ap.parse_args()
    if args.root is None:
        sys.exit("Error: real Market-1501 not found: pass --root or set REIDAUG_DATA")
    ds = Market1501(args.root)
    ds.check_before_run()
    train_ann, test_ann = ds.annotations("train"), ds.annotations("gallery")
    fit_items = sample(ds.train, train_ann, args.fit, args.seed)
    test_items = sample(ds.gallery, test_ann, args.test, args.seed + 1)
    raw_fit, s_fit = landmarks(fit_items)
    raw_test, s_test = landmarks(test_items)
    points = [coco18_points(*r, DEFAULT_MIN_VISIBILITY) for r in raw_fit if r is not None]
    refs = [train_ann[it.name] for it, r in zip(fit_items, raw_fit, strict=True) if r is not None]
    offsets, counts = fit_correction(points, refs)
    ref_fit = np.stack([train_ann[it.name] for it in fit_items])
    ref_test = np.stack([test_ann[it.name] for it in test_items])
    rows = {
        "fit_raw": score(raw_fit, ref_fit, None),
        "fit_corrected": score(raw_fit, ref_fit, offsets),
        "test_raw": score(raw_test, ref_test, None),
        "test_corrected": score(raw_test, ref_test, offsets),
    }
    print(f"fit on {len(fit_items)} training images ({s_fit:.0f} s), tested on {len(test_items)}")
    print(f"held-out test images ({s_test:.0f} s)\n")
    print(f"{'set':16} {'detected':>8} {'<=4px':>6} {'<=8px':>6} {'mean px':>7}")
    for name, r in rows.items():
        print(
            f"{name:16} {r['detected']:>8.3f} {r['within_4px']:>6.3f} {r['within_8px']:>6.3f} "
            f"{r['mean_px']:>7.2f}"
        )
    print(f"\n{'kp':5} {'du':>6} {'dv':>6} {'n':>5} {'test raw <=8':>12} {'corrected':>9}")
    for i, kp in enumerate(KEYPOINT_NAMES):
        raw8 = rows["test_raw"]["per_keypoint"][kp]["within_8px"]
        cor8 = rows["test_corrected"]["per_keypoint"][kp]["within_8px"]
        print(
            f"{kp:5} {offsets[i, 0]:>6.3f} {offsets[i, 1]:>6.3f} {counts[i]:>5} "
            f"{raw8:>12.3f} {cor8:>9.3f}"
        )
    fit = {
        "about": "per COCO-18 keypoint, the median offset from MediaPipe's point to the shipped "
        "Market (OpenPose) annotation, in torso lengths along u (hips to shoulders) and v "
        "(towards the left shoulder) of MediaPipe's torso frame",
        "fitted_on": f"{len(fit_items)} Market-1501 training images with a valid shipped pose "
        f"(seed {args.seed}), MediaPipe at its defaults",
        "command": "python experiments/mediapipe_correction.py --fit "
        f"{args.fit} --test {args.test} --seed {args.seed} --write-correction",
        "offsets": {
            kp: [round(float(a), 4), round(float(b), 4)]
            for kp, (a, b) in zip(KEYPOINT_NAMES, offsets, strict=True)
        },  # fmt: skip
        "counts": {kp: int(c) for kp, c in zip(KEYPOINT_NAMES, counts, strict=True)},
    }
    if args.write_correction:
        write_json(CORRECTION_FILE, fit)
        print(f"wrote {CORRECTION_FILE}")
    if args.json:
        write_json(args.json, {"correction": fit, "rows": rows})
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
