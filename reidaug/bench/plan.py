"""The batches of each arm: which real and synthetic images every optimiser step sees.

Real images come from one endless stream of seeded permutations
(:func:`reidaug.reidnet.train.real_stream`), so every arm sees them in the same order; under
equal steps the augmented arm takes :func:`split_batch` real and synthetic images per batch and
cycles through the real ones more slowly.
"""

from __future__ import annotations

import numpy as np

from reidaug.bench.config import BenchConfig
from reidaug.reidnet.train import real_batches, real_stream


def split_batch(cfg: BenchConfig) -> tuple[int, int]:
    """``(real, synthetic)`` images in every batch of the augmented arm under equal steps."""
    n_syn = min(cfg.batch_size - 1, max(1, round(cfg.synthetic_ratio * cfg.batch_size)))
    return cfg.batch_size - n_syn, n_syn


def steps_per_epoch(cfg: BenchConfig, n_real: int, augmented: bool) -> int:
    """Optimiser steps in one epoch: ``n_real // batch`` for every arm, unless ``extra_steps``."""
    if augmented and cfg.extra_steps and cfg.mix == "replace":
        return (n_real + extra_synthetic(cfg, n_real)) // cfg.batch_size
    return n_real // cfg.batch_size


def extra_synthetic(cfg: BenchConfig, n_real: int) -> int:
    """Synthetic images added to each epoch with ``extra_steps`` (their share is the ratio)."""
    return int(round(n_real * cfg.synthetic_ratio / (1 - cfg.synthetic_ratio)))


def extra_per_step(cfg: BenchConfig) -> int:
    """Images each step of ``--mix add`` takes on top of the recipe's batch (synthetic in the
    augmented arm, real in the baseline-matched one)."""
    return max(1, round(cfg.batch_size * cfg.synthetic_ratio))


def images_per_step(cfg: BenchConfig, arm: str) -> tuple[int, int]:
    """``(real, synthetic)`` images in each step of ``arm``."""
    b = cfg.batch_size
    if arm == "baseline":
        return b, 0
    if cfg.mix == "add":
        m = extra_per_step(cfg)
        return (b + m, 0) if arm == "baseline-matched" else (b, m)
    return split_batch(cfg)


def arm_plan(
    cfg: BenchConfig, arm: str, n_real: int, n_syn: int, seed: int, epoch: int
) -> list[list[int]]:
    """The batches of one epoch of ``arm`` (indices: real ``0..n_real-1``, then synthetic).

    With ``--mix add`` the augmented and baseline-matched arms take, at every step, exactly the
    baseline's real images, and then their extra images: synthetic ones, or real ones drawn
    from a stream of their own (each through its own random augmentation), so the two arms see
    as many images a step and differ only in where the extra ones come from.
    """
    if arm == "baseline" or (arm == "augmented" and cfg.mix == "replace"):
        return batch_plan(cfg, n_real, n_syn if arm == "augmented" else 0, seed, epoch)
    base = real_batches(n_real, cfg.batch_size, seed, epoch)
    m = extra_per_step(cfg)
    if arm == "baseline-matched":
        extra = np.random.default_rng([seed, epoch, 11]).integers(0, n_real, (len(base), m))
    else:
        need = len(base) * m
        rng = np.random.default_rng([seed, epoch, 7])
        extra = (n_real + rng.choice(n_syn, size=need, replace=need > n_syn)).reshape(-1, m)
    return [b + e.tolist() for b, e in zip(base, extra, strict=True)]


def batch_plan(cfg: BenchConfig, n_real: int, n_syn: int, seed: int, epoch: int) -> list[list[int]]:
    """The batches of one epoch as indices (real ``0..n_real-1``, then synthetic), a pure
    function of its arguments, so an interrupted arm resumes on the same data. ``n_syn == 0``
    is the baseline arm."""
    b = cfg.batch_size
    if not n_syn:
        return real_batches(n_real, b, seed, epoch)
    rng = np.random.default_rng([seed, epoch, 7])
    if cfg.extra_steps:
        m = extra_synthetic(cfg, n_real)
        real = np.random.default_rng([seed, epoch]).permutation(n_real)
        idx = np.concatenate([real, n_real + rng.choice(n_syn, size=m, replace=m > n_syn)])
        idx = rng.permutation(idx)
        return [idx[i : i + b].tolist() for i in range(0, len(idx) - b + 1, b)]
    steps = n_real // b
    nr, ns = split_batch(cfg)
    real = real_stream(n_real, seed, epoch * steps * nr, steps * nr)
    syn = n_real + rng.choice(n_syn, size=steps * ns, replace=steps * ns > n_syn)
    return [
        [*real[s * nr : (s + 1) * nr].tolist(), *syn[s * ns : (s + 1) * ns].tolist()]
        for s in range(steps)
    ]
