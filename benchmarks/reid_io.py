"""Reading synthetic images for re-ID: HDF5 shards through ``ShardDataset`` vs the same images
as JPEG files through torchreid's reader, both with torchreid's test transform.

Prints the ratio JPEG time / shard time. Goal: >= 1 (shards at least as fast). The two sides
alternate over ``--repeat`` repetitions; the script prints the median ratio with its min and max.

    python benchmarks/reid_io.py --poses 8
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Spread, alternate  # noqa: E402

from reidaug.config import TrainConfig  # noqa: E402
from reidaug.data import make_synthetic  # noqa: E402
from reidaug.data.market1501 import Market1501  # noqa: E402
from reidaug.reidnet import adapter  # noqa: E402
from reidaug.synthesis import ShardDataset, export, synthesize  # noqa: E402
from reidaug.training import train  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--poses", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=5, help="alternating repetitions of both sides")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_synthetic(tmp / "synth", ids=16)
        cfg = TrainConfig(
            dataset="synthetic",
            root=str(tmp / "synth"),
            width=4,
            d_width=4,
            iters1=1,
            iters2=1,
            batch_size=2,
            workers=0,
            out=str(tmp / "runs"),
            sample_every=10**6,
        )
        run = train(cfg)
        synthesize(
            tmp / "shards", run=run, poses=args.poses, shard_size=1000, workers=0, device="cpu"
        )
        export(tmp / "shards", tmp / "jpeg")
        _, tf = adapter.transforms(128, 64)
        shard_ds = ShardDataset(tmp / "shards", transform=tf)
        files = [it.path for it in Market1501(tmp / "jpeg").train]

        def read_shards():
            for i in range(len(shard_ds)):
                shard_ds[i]["image"]

        def read_jpegs():
            for p in files:
                tf(adapter.read_image(p))

        def seconds(fn):
            def once() -> float:
                t = time.perf_counter()
                fn()
                return time.perf_counter() - t

            return once

        seconds(read_shards)(), seconds(read_jpegs)()  # warm-up: file cache, imports
        pairs = alternate(seconds(read_shards), seconds(read_jpegs), args.repeat)
    n = len(files)
    print(f"reading {n} synthetic images with torchreid's test transform")
    t_shard = Spread(tuple(s for s, _ in pairs)).median
    t_jpeg = Spread(tuple(j for _, j in pairs)).median
    print(f"  HDF5 shards (ShardDataset)  {n / t_shard:8.0f} images/s (median)")
    print(f"  JPEG files (torchreid)      {n / t_jpeg:8.0f} images/s (median)")
    print(Spread(tuple(j / s for s, j in pairs)).line("ratio jpeg/shard", ">= 1"))


if __name__ == "__main__":
    main()
