"""Train a reduced-width G1 on the real Market-1501 for a time budget, then score it.

Prints SSIM and mask-SSIM of G1, of the copy-the-condition baseline and of the real target on
the 12,000 standard test pairs (posegan protocol) and on the PG2 protocol's 12,800 seeded pairs,
through ``reidaug.metrics.evaluate`` (what ``reidaug evaluate`` runs).

    python experiments/g1_market.py --minutes 25 --width 16
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _common import market_root  # noqa: E402

from reidaug.config import TrainConfig  # noqa: E402
from reidaug.metrics import evaluate  # noqa: E402
from reidaug.training import checkpoint as C  # noqa: E402
from reidaug.training import train  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=market_root())
    ap.add_argument("--minutes", type=float, default=25.0)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--variant", default="g1-posemask", choices=["g1-l1", "g1-posemask"])
    ap.add_argument("--heatmap", default="pg2", choices=["pg2", "gaussian"])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--skip-pg2", action="store_true", help="score only the posegan protocol")
    ap.add_argument("--limit", type=int, default=None, help="score only the first N test pairs")
    ap.add_argument("--out", type=Path, default=Path("runs/bench-g1-market"))
    ap.add_argument(
        "--run", type=Path, default=None, help="score an existing run instead of training"
    )
    args = ap.parse_args()
    if args.root is None:
        sys.exit("Error: real Market-1501 not found: pass --root or set REIDAUG_DATA")
    run = args.run
    if run is None:
        cfg = TrainConfig(
            dataset="market1501",
            root=str(args.root),
            variant=args.variant,
            width=args.width,
            heatmap=args.heatmap,
            workers=args.workers,
            batch_size=args.batch_size,
            lr=args.lr,
            iters1=10**7,
            max_seconds=args.minutes * 60,
            out=str(args.out),
            log_every=100,
            sample_every=2000,
            checkpoint_every=2000,
        )
        t = time.time()
        run = train(cfg, log=print)
        print(f"trained {time.time() - t:.0f} s -> {run}")
    ck = C.load(C.latest(run))
    protocols = ["posegan"] if args.skip_pg2 else ["posegan", "pg2"]
    records = evaluate(
        run=run, protocols=protocols, metrics=["ssim", "mssim"], limit=args.limit, device="cpu"
    )
    results: dict = {"run": str(run), "step": ck["global_step"], "width": ck["config"]["width"]}
    for r in records:
        results.setdefault(f"{r['protocol']} ({r['n']} pairs)", {})[
            f"{r['source']} {r['metric']}"
        ] = round(r["value"], 4)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
