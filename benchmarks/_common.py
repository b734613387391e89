"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

A = TypeVar("A")
B = TypeVar("B")

REPO = Path(__file__).resolve().parents[1]


def market_root() -> Path | None:
    root = Path(os.environ.get("REIDAUG_DATA", REPO.parent / "shared" / "data" / "market1501"))
    return root if (root / "annotations").is_dir() else None


def positive_int(text: str) -> int:
    """An argparse type: an integer of 1 or more, else argparse's one-line usage error."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected an integer of 1 or more, got {text!r}")
    return n


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


@dataclass(frozen=True)
class Spread:
    """Per-repetition values of one figure, summarised as median, min and max."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def line(self, label: str, goal: str) -> str:
        """``label  median  (median of n; min a, max b; goal g)``: the form run_all.py reads."""
        v = self.values
        return (
            f"  {label:<15} {self.median:8.3f}   (median of {len(v)}; min {min(v):.3f}, "
            f"max {max(v):.3f}; goal {goal})"
        )


def alternate(side_a: Callable[[], A], side_b: Callable[[], B], repeat: int) -> list[tuple[A, B]]:
    """Measure both sides ``repeat`` times, alternating which goes first (AB, BA, AB, ...).

    A drift in the machine's speed (another process, thermal state) then falls on both sides
    of each pair instead of on one, so per-repetition ratios stay comparable.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    out = []
    for i in range(repeat):
        if i % 2 == 0:
            a = side_a()
            b = side_b()
        else:
            b = side_b()
            a = side_a()
        out.append((a, b))
    return out
