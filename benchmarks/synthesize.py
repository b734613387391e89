"""Synthesis throughput and memory.

1. End-to-end images/s of ``synthesize`` (loading, pose rendering, generation, HDF5 writing)
   divided by the bare generator forward images/s at the same batch size. Goal: >= 0.90.
2. Peak RSS of two job sizes, one 4x the other. Goal: flat, since nothing accumulates.

    python benchmarks/synthesize.py --width 16 --batch-size 64
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import timed  # noqa: E402

from reidaug.config import TrainConfig  # noqa: E402
from reidaug.data import make_synthetic  # noqa: E402
from reidaug.synthesis import synthesize  # noqa: E402
from reidaug.training import load_generator, train  # noqa: E402


def child(run: str, poses: int, batch: int, out: str, workers: int) -> None:
    t = time.perf_counter()
    s = synthesize(
        out, run=run, poses=poses, shard_size=500, batch_size=batch, workers=workers, device="cpu"
    )
    dt = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "images": s["written_images"],
                "seconds": dt,
                "images_s": s["images_s"],
                "peak_rss_mb": rss,
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--poses", type=int, default=2, help="the small job; the large one uses 4x")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--child", nargs=3, metavar=("RUN", "POSES", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.batch_size, args.child[2], args.workers)
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "synth"
        make_synthetic(root, ids=16)
        cfg = TrainConfig(dataset="synthetic", root=str(root), width=args.width, d_width=args.width, iters1=1,
                          iters2=1, batch_size=2, workers=0, out=str(Path(tmp) / "runs"), sample_every=10**6)  # fmt: skip
        run = train(cfg)
        results = []
        for poses in (args.poses, 4 * args.poses):
            cmd = [sys.executable, __file__, "--batch-size", str(args.batch_size), "--workers", str(args.workers),
                   "--child", str(run), str(poses), str(Path(tmp) / f"shards-{poses}")]  # fmt: skip
            results.append(
                json.loads(
                    subprocess.run(
                        cmd, check=True, capture_output=True, text=True
                    ).stdout.splitlines()[-1]
                )
            )
        recipe = load_generator(run).recipe
        b = args.batch_size
        cond, pose = torch.rand(b, 3, 128, 64) * 2 - 1, torch.rand(b, 18, 128, 64) * 2 - 1
        with torch.no_grad():
            bare = b / timed(lambda: recipe.final(cond, pose), repeat=5)
    small, large = results
    print(f"synthesis  width={args.width} batch={b} workers={args.workers}")
    print(f"  end-to-end      {large['images_s']:8.1f} images/s ({large['images']} images)")
    print(f"  bare forward    {bare:8.1f} images/s")
    print(f"  ratio           {large['images_s'] / bare:8.3f}   (goal >= 0.90)")
    print(f"  peak RSS        {small['peak_rss_mb']:8.0f} MB for {small['images']} images, "
          f"{large['peak_rss_mb']:.0f} MB for {large['images']} images "
          f"(ratio {large['peak_rss_mb'] / small['peak_rss_mb']:.2f}, goal ~1.0)")  # fmt: skip


if __name__ == "__main__":
    main()
