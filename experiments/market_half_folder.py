"""Write the other half of Market-1501's training identities as a folder dataset of symlinks,
the way a user brings their own people (docs/your-own-data.md).

The generator of the transfer regime trains on ``--id-fraction 0.5 --subset-seed S`` of
Market's training identities; this folder holds every training image of the *other* half under
``train/``, and Market's query and gallery under ``query/`` and ``gallery/`` (so the folder is
scored on the standard test protocol), with ``poses.csv`` from the shipped annotations (the
query images have none, as in the release). Symlinks only: no Market image is copied.

    python experiments/market_half_folder.py MARKET_ROOT OUT [--subset-seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from reidaug.data import Market1501
from reidaug.data.keypoints import write_annotations


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("market", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--subset-seed", type=int, default=0)
    args = ap.parse_args()
    if args.out.exists():
        raise SystemExit(f"Error: {args.out} exists; remove it or choose another folder")

    market = Market1501(args.market)
    market.check_before_run()
    everyone = {it.raw_pid for it in market.train}
    half = Market1501(args.market)
    half.restrict_train(id_fraction=0.5, seed=args.subset_seed)
    generator_ids = {it.raw_pid for it in half.train}
    others = everyone - generator_ids

    tmp = args.out.with_name(args.out.name + ".tmp")
    poses = {}
    for split, items, anns in (
        ("train", [it for it in market.train if it.raw_pid in others], "train"),
        ("query", market.query, None),
        ("gallery", market.gallery + market.gallery_junk, "gallery"),
    ):
        (tmp / split).mkdir(parents=True)
        shipped = market.annotations(anns) if anns else {}
        for it in items:
            os.symlink(it.path.resolve(), tmp / split / it.name)
            if it.name in shipped:
                poses[f"{split}/{it.name}"] = shipped[it.name]
    write_annotations(tmp / "poses.csv", poses)
    (tmp / "half.json").write_text(
        json.dumps(
            {
                "generator_subset": {"id_fraction": 0.5, "seed": args.subset_seed},
                "generator_ids": len(generator_ids),
                "folder_train_ids": len(others),
                "folder_train_images": sum(it.raw_pid in others for it in market.train),
                "overlap": len(generator_ids & others),
            },
            indent=1,
        )
    )
    tmp.rename(args.out)
    print(json.loads((args.out / "half.json").read_text()))


if __name__ == "__main__":
    main()
