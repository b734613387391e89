"""The pretrained-baselines study's summary and tables, from the bench reports of
``experiments/pretrained_baselines.sh``.

    python experiments/pretrained_baselines.py OUT docs/results/pretrained-baselines

Writes ``summary.json`` (per step: the options that differ between steps, the split, per-seed
mAP / Rank-1, seconds and environment; no paths) into the study folder and prints its tables.
``--from-summary`` rebuilds the tables from a committed ``summary.json`` alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

STEPS = ("val-A", "val-B", "val-B-noerase", "val-B-60", "k2", "full", "k4")
KEPT = ("lr", "base_lr_mult", "epochs", "warmup_epochs", "transforms", "model", "height", "width")


def summarise(report: dict) -> dict:
    c = report["config"]
    runs = report["runs"]["baseline"]
    env = runs[0].get("environment") or {}
    return {
        "options": {k: c.get(k) for k in KEPT},
        "real_per_id": c.get("real_per_id"),
        "validation": report.get("validation"),
        "train_images": report["train_images"],
        "seeds": [r["seed"] for r in runs],
        "mAP": [round(100 * r["mAP"], 2) for r in runs],
        "rank1": [round(100 * r["rank1"], 2) for r in runs],
        "seconds": [round(r["seconds"]) for r in runs],
        "environment": {k: env.get(k) for k in ("cpu", "threads", "torch", "torchreid")},
    }


def cell(values: list[float]) -> str:
    m = statistics.mean(values)
    return f"{m:.1f} ± {statistics.stdev(values):.1f}" if len(values) > 1 else f"{m:.1f}"


def tables(summary: dict) -> str:
    lines = [
        "| step | split | K | lr (head / backbone) | epochs | transforms | seeds | mAP | Rank-1 "
        "| CPU-min a seed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for step, s in summary.items():
        o = s["options"]
        split = "validation (100 ids)" if s["validation"] else "test"
        lr = f"{o['lr']:g} / {o['lr'] * (o['base_lr_mult'] or 1):g}"
        lines.append(
            f"| {step} | {split} | {s['real_per_id'] or 'all'} | {lr} | {o['epochs']} | "
            f"{', '.join(t.removeprefix('random_') for t in o['transforms'])} | {s['seeds']} | "
            f"{cell(s['mAP'])} | {cell(s['rank1'])} | "
            f"{statistics.mean(s['seconds']) / 60:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="the runner's OUT, or the study folder")
    ap.add_argument("study", type=Path, nargs="?", default=None)
    ap.add_argument("--from-summary", action="store_true")
    args = ap.parse_args()
    if args.from_summary:
        summary = json.loads((args.out / "summary.json").read_text())
    else:
        summary = {}
        for step in STEPS:
            rep = args.out / step / "report.json"
            if rep.is_file():
                summary[step] = summarise(json.loads(rep.read_text()))
        if not summary:
            sys.exit(f"Error: no report.json under {args.out}/<step>/")
        if args.study is not None:
            args.study.mkdir(parents=True, exist_ok=True)
            (args.study / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(tables(summary))


if __name__ == "__main__":
    main()
