"""PG2 and MsCGAN side by side: the same data, seed, width and iterations, scored the same way.

    python experiments/compare_models.py --dataset synthetic --width 16 --iters1 300 --iters2 60
    python experiments/compare_models.py --dataset market1501 --root ../shared/data/market1501 \
        --width 16 --iters1 6000 --iters2 1000 --limit 2000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from reidaug.config import TrainConfig  # noqa: E402
from reidaug.data import make_synthetic  # noqa: E402
from reidaug.metrics import evaluate  # noqa: E402
from reidaug.training import train  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="synthetic", choices=["synthetic", "market1501"])
    ap.add_argument(
        "--root", type=Path, default=None, help="dataset root (synthetic: made in a temp folder)"
    )
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--iters1", type=int, default=300)
    ap.add_argument("--iters2", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=400, help="test pairs per protocol")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root
        if root is None:
            if args.dataset != "synthetic":
                sys.exit("Error: --root is required for market1501")
            root = Path(tmp) / "synth"
            make_synthetic(root, ids=32, seed=args.seed)
        out = args.out or Path(tmp) / "runs"
        rows = {}
        for model in ("pg2", "mscgan"):
            cfg = TrainConfig(
                model=model,
                dataset=args.dataset,
                root=str(root),
                width=args.width,
                d_width=args.width,
                iters1=args.iters1,
                iters2=args.iters2,
                batch_size=args.batch_size,
                lr=args.lr,
                seed=args.seed,
                out=str(out),
                log_every=100,
                sample_every=10**6,
            )
            run = train(cfg)
            recs = evaluate(
                run=run, protocols=["pg2", "posegan"], metrics=["ssim", "mssim"], limit=args.limit
            )
            rows[model] = {(r["metric"], r["protocol"], r["source"]): r["value"] for r in recs}
    cols = [(m, p) for p in ("pg2", "posegan") for m in ("ssim", "mssim")]
    print(f"{'':16}" + "".join(f"{m + ' (' + p + ')':>18}" for m, p in cols))
    for label, model, src in (
        ("PG2 G1", "pg2", "G1"),
        ("PG2 G1+G2", "pg2", "G2"),
        ("MsCGAN G1", "mscgan", "G1"),
        ("MsCGAN G1+G2", "mscgan", "G2"),
        ("copy baseline", "pg2", "copy baseline"),
    ):
        print(f"{label:16}" + "".join(f"{rows[model][(m, p, src)]:18.4f}" for m, p in cols))


if __name__ == "__main__":
    main()
