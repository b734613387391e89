"""How fast the CLI answers: ``reidaug --help``, every ``COMMAND --help`` and a usage error,
each in a fresh process, against the 0.5 s a user should wait at most.

    python benchmarks/cli_startup.py --repeat 5

Prints, per invocation, the median wall time over the repeats (the invocations take turns, so
a drift in the machine's speed falls on all of them), then the slowest median as a ratio to
0.5 s (at most 1 meets the goal).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time

from _common import Spread, positive_int

LIMIT_S = 0.5
INVOCATIONS = [
    ["--help"],
    ["data", "--help"],
    ["data", "check", "--help"],
    ["poses", "estimate", "--help"],
    ["train", "--help"],
    ["synthesize", "--help"],
    ["export", "--help"],
    ["evaluate", "--help"],
    ["bench-reid", "--help"],
    ["demo", "--help"],
    ["synthesize", "--poses", "0", "--out", "x"],  # a usage error (exit 2)
]


def run_once(exe: list[str], args: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run([*exe, *args], capture_output=True, check=False)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=positive_int, default=5, help="rounds over all invocations")
    args = ap.parse_args()
    exe = (
        [shutil.which("reidaug") or ""]
        if shutil.which("reidaug")
        else [sys.executable, "-m", "reidaug"]
    )
    times: dict[str, list[float]] = {" ".join(a): [] for a in INVOCATIONS}
    for r in range(args.repeat):
        order = INVOCATIONS if r % 2 == 0 else INVOCATIONS[::-1]
        for a in order:
            times[" ".join(a)].append(run_once(exe, a))
    for name, ts in times.items():
        print(f"  reidaug {name:<45} {Spread(tuple(ts)).median:.3f} s")
    worst = max(times.values(), key=lambda ts: Spread(tuple(ts)).median)
    print(Spread(tuple(t / LIMIT_S for t in worst)).line("ratio", f"<= 1 ({LIMIT_S} s)"))


if __name__ == "__main__":
    main()
