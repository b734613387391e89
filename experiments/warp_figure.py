"""The part-warping generator's picture on the embedded dataset: a plain G1 and a warping G1
(``--skip deform``) trained with the same seed, batches and steps, on held-out pairs.

Columns: condition | target pose | plain G1 | warp (training-free) | warping G1 | target.
Prints the two G1s' posegan SSIM, mask-SSIM and sharpness on the same pairs. Only embedded
(procedural) images: no Market image goes into the picture.

    python experiments/warp_figure.py --out docs/warp-samples.png --iters 600
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from reidaug.config import TrainConfig
from reidaug.data import SyntheticMarket, make_synthetic
from reidaug.data.pairs import PairDataset
from reidaug.data.parts import part_warp, paste_warp
from reidaug.metrics.evaluate import as_table, evaluate
from reidaug.training import load_generator, train
from reidaug.training.rundir import pose_image, save_grid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("warp-samples.png"))
    ap.add_argument("--iters", type=int, default=600, help="G1 iterations of each model")
    ap.add_argument("--rows", type=int, default=6)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "embedded"
        make_synthetic(root, ids=16, seed=0, test_pairs=200)
        ds = SyntheticMarket(root)
        runs = {}
        for skip in ("add", "deform"):
            cfg = TrainConfig(
                dataset="synthetic",
                root=str(root),
                out=str(Path(tmp) / skip),
                stage="1",
                width=16,
                variant="g1-posemask",
                skip=skip,
                norm="batch",
                iters1=args.iters,
                batch_size=8,
                lr=5e-4,
                log_every=50,
                sample_every=10**6,
                checkpoint_every=10**6,
            )
            runs[skip] = train(cfg)
            recs = evaluate(
                run=runs[skip], protocols=["posegan"], metrics=["ssim", "mssim", "sharpness"]
            )
            cols, rows = as_table(recs)
            print(f"--skip {skip}: " + ", ".join(cols))
            for name, cells in rows:
                print(f"  {name:<14} " + "  ".join(cells))
        pairs = ds.test_pairs()[:: max(1, len(ds.test_pairs()) // args.rows)][: args.rows]
        data = PairDataset(ds, pairs, "gallery")
        batch = {k: torch.stack([data[i][k] for i in range(len(pairs))]) for k in data[0]}
        kps = (batch["source_keypoints"], batch["target_keypoints"])
        outs = {
            skip: load_generator(run).recipe.final(batch["condition"], batch["target_pose"], *kps)
            for skip, run in runs.items()
        }
        warp = paste_warp(batch["condition"], part_warp(*kps, ds.height, ds.width))
        columns = [
            batch["condition"],
            pose_image(batch["target_pose"]),
            outs["add"],
            warp,
            outs["deform"],
            batch["target"],
        ]
        save_grid(args.out, [c.detach() for c in columns])
        print(f"wrote {args.out} ({len(pairs)} rows; {np.prod(columns[0].shape[-2:])} px each)")


if __name__ == "__main__":
    main()
