"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def market_root() -> Path | None:
    root = Path(
        os.environ.get("REIDAUG_MARKET_ROOT", REPO.parent / "shared" / "data" / "market1501")
    )
    return root if (root / "annotations").is_dir() else None


def timed(fn, repeat: int, warmup: int = 2) -> float:
    """Median seconds of ``fn()`` over ``repeat`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)
