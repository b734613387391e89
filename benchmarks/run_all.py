"""Run every throughput benchmark with a small budget and print one table of ratios vs goals.

    python benchmarks/run_all.py            # about 4 minutes on 2 CPU cores
    python benchmarks/run_all.py --markdown # the table as Markdown, for the README

Each benchmark is its own script (run it alone for details and larger budgets); this one runs
them in turn, in fresh processes, and reads the ratio each prints: the median over repetitions
that alternate the two sides, with its min and max (the spread).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (name, script and small-budget arguments, label of the printed figure, goal text, test)
BENCHMARKS = [
    (
        "CLI answer time vs 0.5 s (slowest --help)",
        ["cli_startup.py", "--repeat", "3"],
        "ratio",
        "<= 1",
        lambda v: v <= 1,
    ),
    (
        "pose rendering vs training consumption",
        ["pose_render.py", "--samples", "200"],
        "ratio",
        ">= 10x",
        lambda v: v >= 10,
    ),
    (
        "train step vs bare forward+backward",
        ["train_step.py", "--iters", "30"],
        "ratio",
        "<= 1.05",
        lambda v: v <= 1.05,
    ),
    (
        "synthesis vs bare forward",
        ["synthesize.py", "--poses", "1"],
        "ratio",
        ">= 0.90",
        lambda v: v >= 0.90,
    ),
    (
        "synthesis peak memory, 4x larger job",
        ["synthesize.py", "--poses", "1"],
        "memory ratio",
        "~1.0 (<= 1.2)",
        lambda v: v <= 1.2,
    ),
    (
        "warping G1 step vs plain G1 step",
        ["deform_cost.py", "--iters", "16", "--repeat", "5"],
        "ratio",
        "<= 1.3",
        lambda v: v <= 1.3,
    ),
    (
        "bench-reid epoch vs torchreid's loop",
        ["reid_epoch.py", "--repeat", "3"],
        "ratio w=1",
        "<= 1.05",
        lambda v: v <= 1.05,
    ),
    (
        "shard read vs torchreid JPEG read",
        ["reid_io.py", "--poses", "4"],
        "ratio jpeg/shard",
        ">= 1",
        lambda v: v >= 1,
    ),
]


def figure(output: str, label: str) -> tuple[float, int, float, float] | None:
    """(median, repetitions, min, max) from a ``Spread.line`` the script printed, or None."""
    m = re.search(
        rf"^\s*{re.escape(label)}\s+([\d.]+)\s+\(median of (\d+); min ([\d.]+), max ([\d.]+)",
        output,
        re.MULTILINE,
    )
    return None if m is None else (float(m[1]), int(m[2]), float(m[3]), float(m[4]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = ap.parse_args()
    outputs: dict[tuple[str, ...], str] = {}
    rows = []
    for name, cmd, label, goal, ok in BENCHMARKS:
        key = tuple(cmd)
        if key not in outputs:  # one run serves every figure read from it
            t = time.time()
            print(f"running {' '.join(cmd)} ...", file=sys.stderr, flush=True)
            r = subprocess.run(
                [sys.executable, str(HERE / cmd[0]), *cmd[1:]], capture_output=True, text=True
            )
            outputs[key] = r.stdout + r.stderr
            print(f"  {time.time() - t:.0f} s", file=sys.stderr, flush=True)
        f = figure(outputs[key], label)
        if f is None:
            rows.append((name, "failed", "", goal, "no", " ".join(cmd)))
            print(outputs[key][-2000:], file=sys.stderr)
            continue
        v, n, lo, hi = f
        spread = f"{lo:.3f} to {hi:.3f} ({n} reps)"
        rows.append((name, f"{v:.3f}", spread, goal, "yes" if ok(v) else "no", " ".join(cmd)))
    head = ("benchmark", "median", "min to max", "goal", "met", "script")
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + " --- |" * len(head))
        for r in rows:
            print("| " + " | ".join((*r[:5], f"`{r[5]}`")) + " |")
    else:
        widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
        for r in (head, *rows):
            print("  ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    main()
