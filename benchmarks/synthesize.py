"""Synthesis throughput and memory.

1. End-to-end images/s of ``synthesize`` (loading, pose rendering, generation, HDF5 writing)
   divided by the bare generator forward images/s at the same batch size. Goal: >= 0.90.
2. Peak RSS of two job sizes, one 4x the other. Goal: flat, since nothing accumulates.

The two sides alternate over ``--repeat`` repetitions; each figure is the median of the
per-repetition ratios, printed with its min and max.

    python benchmarks/synthesize.py --width 16 --batch-size 64
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Spread, alternate, timed  # noqa: E402

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
    ap.add_argument("--repeat", type=int, default=5, help="alternating repetitions of both sides")
    ap.add_argument("--child", nargs=3, metavar=("RUN", "POSES", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.batch_size, args.child[2], args.workers)
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "synth"
        make_synthetic(root, ids=16)
        cfg = TrainConfig(
            dataset="synthetic",
            root=str(root),
            width=args.width,
            d_width=args.width,
            iters1=1,
            iters2=1,
            batch_size=2,
            workers=0,
            out=str(Path(tmp) / "runs"),
            sample_every=10**6,
        )
        run = train(cfg)
        recipe = load_generator(run).recipe
        b = args.batch_size
        cond, pose = torch.rand(b, 3, 128, 64) * 2 - 1, torch.rand(b, 18, 128, 64) * 2 - 1
        jobs = itertools.count()  # a fresh shard folder for every job

        def end_to_end() -> tuple[dict, dict]:
            """The small and the 4x larger job, each in a fresh process and a fresh folder."""
            out = []
            for poses in (args.poses, 4 * args.poses):
                cmd = [
                    sys.executable,
                    __file__,
                    "--batch-size",
                    str(b),
                    "--workers",
                    str(args.workers),
                    "--child",
                    str(run),
                    str(poses),
                    str(Path(tmp) / f"shards-{next(jobs)}"),
                ]
                done = subprocess.run(cmd, check=True, capture_output=True, text=True)
                out.append(json.loads(done.stdout.splitlines()[-1]))
            return out[0], out[1]

        def bare() -> float:
            with torch.no_grad():
                return b / timed(lambda: recipe.final(cond, pose), repeat=5)

        pairs = alternate(end_to_end, bare, args.repeat)
    large = [lg for (_, lg), _ in pairs]
    print(f"synthesis  width={args.width} batch={b} workers={args.workers}")
    print(
        f"  end-to-end      {Spread(tuple(x['images_s'] for x in large)).median:8.1f} images/s "
        f"(median; {large[0]['images']} images)"
    )
    print(f"  bare forward    {Spread(tuple(r for _, r in pairs)).median:8.1f} images/s (median)")
    print(Spread(tuple(lg["images_s"] / r for (_, lg), r in pairs)).line("ratio", ">= 0.90"))
    small = pairs[0][0][0]
    print(
        f"  peak RSS        {small['peak_rss_mb']:8.0f} MB for {small['images']} images, "
        f"{large[0]['peak_rss_mb']:.0f} MB for {large[0]['images']} images"
    )
    rss = Spread(tuple(lg["peak_rss_mb"] / sm["peak_rss_mb"] for (sm, lg), _ in pairs))
    print(rss.line("memory ratio", "~1.0, <= 1.2"))


if __name__ == "__main__":
    main()
