"""The progress contract of every long library loop.

A loop reports ``progress(done, total, label=None, **stats)``: ``done`` of ``total`` units,
optionally what it is working on (``label``: ``"stage 1"``, ``"baseline seed 3"``) and
figures worth showing (``stats``: ``loss=0.12``, ``epoch="3/60"``; a key ending in ``_s`` is a
rate, ``it_s=2.1`` reads "2.1 it/s"). The command line renders whatever it gets; no loop
invents fields to fit a display.
"""

from __future__ import annotations

from collections.abc import Callable

ProgressFn = Callable[..., None]


def relabel(progress: ProgressFn | None, label: str) -> ProgressFn | None:
    """``progress`` with every report's label replaced by ``label`` (an inner loop run as one
    step of an outer job, such as the re-ID model an evaluation trains first)."""
    if progress is None:
        return None

    def report(done: int, total: int, _label: str | None = None, **stats: object) -> None:
        progress(done, total, label, **stats)

    return report


def render_stats(stats: dict[str, object]) -> str:
    """``loss 0.1234 | 2.31 it/s``: floats to four significant digits, ``*_s`` keys as rates."""
    parts = []
    for key, value in stats.items():
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        parts.append(f"{text} {key[:-2]}/s" if key.endswith("_s") else f"{key} {text}")
    return " | ".join(parts)
