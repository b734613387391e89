"""Agreement of ``reidaug poses estimate`` with the shipped Market-1501 annotations.

Runs keypoint R-CNN on the first ``--limit`` training images (sorted by name), then compares
with ``market-annotation-train.csv``: mean keypoint distance (pixels, over points both mark
present) and missing-point agreement (both present or both -1), per keypoint and overall, at
several score thresholds.

    python benchmarks/pose_agreement.py --root ../shared/data/market1501 \\
        --weights keypointrcnn_resnet50_fpn_coco-fc266e95.pth --limit 2000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import market_root  # noqa: E402

from reidaug.data import Market1501  # noqa: E402
from reidaug.data.estimate import build_detector, coco17_to_coco18, pick_person  # noqa: E402
from reidaug.data.keypoints import KEYPOINT_NAMES, present  # noqa: E402
from reidaug.data.pairs import load_image  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=market_root())
    ap.add_argument("--weights", type=Path, default=None, help="default: the torch hub cache")
    ap.add_argument("--limit", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--min-size", type=int, default=800)
    ap.add_argument("--thresholds", default="-1,0,1,2,3")
    args = ap.parse_args()
    if args.root is None:
        sys.exit("Error: real Market-1501 not found: pass --root or set REIDAUG_MARKET_ROOT")
    ds = Market1501(args.root)
    ds.check_before_run()
    shipped = ds.annotations("train")
    items = [it for it in ds.train if it.path.name in shipped][: args.limit]
    det = build_detector(args.weights, min_size=args.min_size)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    det = det.to(device)
    raw = []  # per image: (xy 17x2, scores 17) or None
    t = time.time()
    with torch.no_grad():
        for s in range(0, len(items), args.batch_size):
            chunk = items[s : s + args.batch_size]
            ims = [torch.from_numpy(load_image(it.path, 128, 64)).permute(2, 0, 1).float().div(255).to(device)
                   for it in chunk]  # fmt: skip
            for out in det(ims):
                k = pick_person(out["boxes"].cpu().numpy(), out["scores"].cpu().numpy(), 128, 64)
                raw.append(None if k is None else (out["keypoints"][k, :, :2].cpu().numpy(),
                                                   out["keypoints_scores"][k].cpu().numpy()))  # fmt: skip
    print(f"{len(items)} images in {time.time() - t:.0f} s on {device}; "
          f"{sum(r is not None for r in raw)} with a centre person")  # fmt: skip
    ref = np.stack([shipped[it.path.name] for it in items])
    ref_ok = present(ref)
    print(f"{'min-score':>9} {'agree':>7} {'dist px':>8} {'present (ours / shipped)':>26}")
    best = None
    for th in (float(x) for x in args.thresholds.split(",")):
        ours = np.stack(
            [np.full((18, 2), -1) if r is None else coco17_to_coco18(r[0], r[1], th) for r in raw]
        )
        ok = present(ours)
        agree = (ok == ref_ok).mean()
        both = ok & ref_ok
        dist = (
            np.linalg.norm((ours - ref).astype(float), axis=-1)[both].mean()
            if both.any()
            else float("nan")
        )
        print(f"{th:>9.1f} {agree:>7.3f} {dist:>8.2f} {ok.mean():>12.3f} / {ref_ok.mean():.3f}")
        if best is None or agree > best[1]:
            best = (th, agree, ours)
    th, _, ours = best
    ok = present(ours)
    print(f"\nper keypoint at min-score {th}: agreement, distance")
    for i, name in enumerate(KEYPOINT_NAMES):
        both = ok[:, i] & ref_ok[:, i]
        d = np.linalg.norm((ours[:, i] - ref[:, i]).astype(float), axis=-1)[both]
        print(
            f"  {name:5} {(ok[:, i] == ref_ok[:, i]).mean():.3f}  {d.mean() if len(d) else float('nan'):6.2f}"
        )


if __name__ == "__main__":
    main()
