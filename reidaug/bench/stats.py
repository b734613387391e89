"""Seed statistics of a bench: mean ± std per arm and the paired delta with its 95 % interval."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

VERDICTS = ("gain", "loss", "no measurable difference")


def mean_std(values: Sequence[float]) -> dict:
    """``{"mean", "std", "n"}``; ``std`` is the sample standard deviation (0 for one value)."""
    v = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(v.mean()) if len(v) else float("nan"),
        "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
        "n": len(v),
    }


def paired_delta(baseline: Sequence[float], augmented: Sequence[float]) -> dict:
    """Per-seed differences ``augmented - baseline`` (same seed, same order), their mean, sample
    std, Student-t 95 % interval of the mean and a verdict.

    Returns:
        ``{"per_seed", "mean", "std", "n", "ci95", "verdict", "detectable"}``. ``ci95`` is
        ``[lo, hi]``, or ``None`` with one seed (no interval can be computed; the verdict is then
        ``no measurable difference``). The verdict is ``gain`` when the interval lies above 0,
        ``loss`` when it lies below 0, else ``no measurable difference``; ``detectable`` is
        :func:`detectable_effect` of the per-seed differences.
    """
    from scipy.stats import t

    if len(baseline) != len(augmented) or not baseline:
        raise ValueError("paired_delta needs the same non-zero number of values in both arms")
    d = np.asarray(augmented, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    out = {"per_seed": d.tolist(), **mean_std(d)}
    if len(d) < 2:
        return {**out, "ci95": None, "verdict": VERDICTS[2]}
    half = float(t.ppf(0.975, len(d) - 1) * out["std"] / np.sqrt(len(d)))
    lo, hi = out["mean"] - half, out["mean"] + half
    verdict = VERDICTS[0] if lo > 0 else VERDICTS[1] if hi < 0 else VERDICTS[2]
    mde = detectable_effect(out["std"], len(d))
    return {**out, "ci95": [lo, hi], "verdict": verdict, "detectable": mde}


def detectable_effect(std: float, n: int, power: float = 0.8, alpha: float = 0.05) -> float:
    """The smallest true mean difference that a paired two-sided t-test over ``n`` seeds, with
    per-seed differences of sample std ``std``, detects with probability ``power`` at level
    ``alpha``: ``(t(1 - alpha/2, n-1) + t(power, n-1)) * std / sqrt(n)``.

    So "no measurable difference" beside it says how small a difference was ruled out.
    """
    from scipy.stats import t

    if n < 2:
        return float("nan")
    return float((t.ppf(1 - alpha / 2, n - 1) + t.ppf(power, n - 1)) * std / np.sqrt(n))
