"""Agreement of ``reidaug poses estimate`` with the shipped Market-1501 annotations.

Runs a backend on ``--limit`` training images drawn (seeded) from those whose shipped pose is
valid (shoulders and hips present), then compares with ``market-annotation-train.csv``, which is
OpenPose's output, not ground truth: this is agreement, not accuracy. For each framing (MediaPipe:
``--framings`` at ``--scale``) and each threshold it prints the detection rate, the share of
points both mark present that lie within 4 and 8 px (128x64 coordinates), their mean distance,
and the missing-point agreement (both present or both -1); then per keypoint for the default
(MediaPipe) or the best row.

    python experiments/pose_agreement.py --backend mediapipe --limit 2000 --json agreement.json
    python experiments/pose_agreement.py --backend keypointrcnn \\
        --weights keypointrcnn_resnet50_fpn_coco-fc266e95.pth --thresholds 0,1,2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _common import market_root  # noqa: E402

from reidaug.data import Market1501  # noqa: E402
from reidaug.data.estimate import (  # noqa: E402
    KeypointRCNN,
    build_detector,
    coco17_to_coco18,
    read_crop,
)
from reidaug.data.keypoints import KEYPOINT_NAMES, MISSING, is_valid_pose, present  # noqa: E402
from reidaug.data.mediapipe_pose import (  # noqa: E402
    DEFAULT_FRAMINGS,
    DEFAULT_MIN_VISIBILITY,
    MediaPipePose,
    mediapipe_to_coco18,
    parse_framings,
)


def agreement(ours: np.ndarray, ref: np.ndarray, found: np.ndarray) -> dict:
    """Figures of ``ours`` against ``ref`` (both ``(N, 18, 2)`` ``(y, x)``), overall and per
    keypoint; ``found`` marks the images where the backend found a person."""
    ok, ref_ok = present(ours), present(ref)
    both = ok & ref_ok
    dist = np.linalg.norm((ours - ref).astype(float), axis=-1)

    def figures(sel: tuple) -> dict:
        d = dist[sel][both[sel]]
        return {
            "both_present": int(both[sel].sum()),
            "within_4px": float((d <= 4).mean()) if d.size else float("nan"),
            "within_8px": float((d <= 8).mean()) if d.size else float("nan"),
            "mean_px": float(d.mean()) if d.size else float("nan"),
            "median_px": float(np.median(d)) if d.size else float("nan"),
            "missing_agreement": float((ok[sel] == ref_ok[sel]).mean()),
        }

    out = {"images": len(ours), "detected": float(found.mean()), **figures((slice(None),))}
    out["per_keypoint"] = {name: figures((slice(None), i)) for i, name in enumerate(KEYPOINT_NAMES)}
    return out


def run_mediapipe(paths: list[Path], scale: float, framing: str) -> tuple[list, float]:
    """Raw landmarks per image (``(xy, visibility)`` or None) and seconds taken."""
    t = time.perf_counter()
    with MediaPipePose(scale=scale, framings=parse_framings(framing)) as pose:
        raw = [pose.landmarks(read_crop(p)) for p in paths]
    return raw, time.perf_counter() - t


def run_rcnn(paths: list[Path], weights: Path | None, min_size: int) -> tuple[list, float]:
    """Raw keypoints per image (``(xy, scores)`` or None) and seconds taken."""
    rcnn = KeypointRCNN(build_detector(weights, min_size=min_size))
    t = time.perf_counter()
    raw = []
    for s in range(0, len(paths), 8):
        raw += rcnn.landmarks([read_crop(p) for p in paths[s : s + 8]])
    return raw, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=market_root())
    ap.add_argument("--backend", choices=("mediapipe", "keypointrcnn"), default="mediapipe")
    ap.add_argument("--limit", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--framings",
        default="0:0.5;0.25:0.5;0.5:0.5;1:0.5;1:0.2;0.5:0.5,1:0.2",
        help="[mediapipe] framings to compare, ';'-separated; each as the CLI's --framing",
    )
    ap.add_argument("--scale", type=float, default=4, help="[mediapipe] bicubic upscale")
    ap.add_argument(
        "--thresholds",
        default=None,
        help="visibility (mediapipe, default 0.3,0.5,0.7) or keypoint score "
        "(keypointrcnn, default 0,1,2)",
    )
    ap.add_argument("--weights", type=Path, default=None, help="[keypointrcnn] default: hub cache")
    ap.add_argument("--min-size", type=int, default=800, help="[keypointrcnn]")
    ap.add_argument("--json", type=Path, default=None, help="write every figure here")
    args = ap.parse_args()
    if args.root is None:
        sys.exit("Error: real Market-1501 not found: pass --root or set REIDAUG_DATA")
    ds = Market1501(args.root)
    ds.check_before_run()
    shipped = ds.annotations("train")
    valid = [
        it for it in ds.train if it.path.name in shipped and is_valid_pose(shipped[it.path.name])
    ]
    rng = np.random.default_rng(args.seed)
    items = [
        valid[i] for i in sorted(rng.choice(len(valid), min(args.limit, len(valid)), replace=False))
    ]
    paths = [it.path for it in items]
    ref = np.stack([shipped[p.name] for p in paths])
    default = "0.3,0.5,0.7" if args.backend == "mediapipe" else "0,1,2"
    thresholds = [float(x) for x in (args.thresholds or default).split(",")]
    framings = args.framings.split(";") if args.backend == "mediapipe" else [None]
    print(
        f"{len(paths)} of {len(valid)} training images with a valid shipped pose (seed {args.seed})"
    )
    rows = []
    for framing in framings:
        if args.backend == "mediapipe":
            raw, secs = run_mediapipe(paths, args.scale, framing)
            convert = lambda r, th: mediapipe_to_coco18(*r, th, 128, 64)  # noqa: E731
        else:
            raw, secs = run_rcnn(paths, args.weights, args.min_size)
            convert = lambda r, th: coco17_to_coco18(*r, th)  # noqa: E731
        found = np.array([r is not None for r in raw])
        for th in thresholds:
            ours = np.stack(
                [np.full((18, 2), MISSING) if r is None else convert(r, th) for r in raw]
            )
            rows.append(
                {
                    "backend": args.backend,
                    "scale": args.scale if framing else None,
                    "framing": framing,
                    "threshold": th,
                    "seconds": secs,
                    **agreement(ours, ref, found),
                }
            )
    head = (
        f"{'framing':>13} {'thresh':>6} {'detected':>8} {'<=4px':>6} {'<=8px':>6} "
        f"{'mean px':>7} {'median':>6} {'miss-agree':>10} {'s':>5}"
    )
    print(head)
    for r in rows:
        print(
            f"{r['framing'] or '-':>13} {r['threshold']:>6.2f} {r['detected']:>8.3f} "
            f"{r['within_4px']:>6.3f} "
            f"{r['within_8px']:>6.3f} {r['mean_px']:>7.2f} {r['median_px']:>6.2f} "
            f"{r['missing_agreement']:>10.3f} {r['seconds']:>5.0f}"
        )
    default = (",".join(f"{m:g}:{c:g}" for m, c in DEFAULT_FRAMINGS), DEFAULT_MIN_VISIBILITY)
    chosen = [r for r in rows if (r["framing"], r["threshold"]) == default]
    best = chosen[0] if chosen else max(rows, key=lambda r: (r["detected"] >= 0.9, r["within_8px"]))
    print(f"\nper keypoint at framing {best['framing']}, threshold {best['threshold']}:")
    print(f"  {'kp':5} {'both':>5} {'<=4px':>6} {'<=8px':>6} {'mean px':>7} {'miss-agree':>10}")
    for name, f in best["per_keypoint"].items():
        print(
            f"  {name:5} {f['both_present']:>5} {f['within_4px']:>6.3f} {f['within_8px']:>6.3f} "
            f"{f['mean_px']:>7.2f} {f['missing_agreement']:>10.3f}"
        )
    if args.json:
        args.json.write_text(
            json.dumps({"images": [p.name for p in paths], "rows": rows}, indent=1)
        )
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
