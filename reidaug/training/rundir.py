"""Run directories: ``RUNS/00000-pg2-market1501/`` with options, stats, samples, curves and
checkpoints."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from reidaug.atomic import atomic_path, save_figure, write_text
from reidaug.config import TrainConfig
from reidaug.data.pairs import to_uint8


def write_options(run: Path, cfg: TrainConfig) -> None:
    """Write ``training_options.json`` atomically (temp file renamed into place)."""
    write_text(run / "training_options.json", cfg.to_json() + "\n")


def create(runs: str | Path, cfg: TrainConfig) -> Path:
    """Make the next numbered run directory and write ``training_options.json``."""
    runs = Path(runs)
    runs.mkdir(parents=True, exist_ok=True)
    ids = [int(m.group(1)) for p in runs.iterdir() if (m := re.match(r"^(\d{5})-", p.name))]
    run = runs / f"{max(ids, default=-1) + 1:05d}-{cfg.model}-{cfg.dataset}"
    (run / "samples").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    write_options(run, cfg)
    return run


def append_stats(run: Path, record: dict) -> None:
    """Append one JSON line to ``stats.jsonl`` (see :func:`append_jsonl`)."""
    append_jsonl(run / "stats.jsonl", record)


def append_jsonl(p: Path, record: dict) -> None:
    """Append one JSON line to ``p``, on a fresh line even when the last append was torn (a
    kill or a full disk mid-write leaves a line without its newline)."""
    torn = False
    if p.is_file() and p.stat().st_size:
        with open(p, "rb") as f:
            f.seek(-1, 2)
            torn = f.read(1) != b"\n"
    with open(p, "a", encoding="utf-8") as f:
        f.write(
            ("\n" if torn else "") + json.dumps({"time": round(time.time(), 3), **record}) + "\n"
        )


def read_stats(run: Path) -> tuple[list[dict], int]:
    """The records of ``stats.jsonl`` and how many torn (unparsable) lines were skipped."""
    p = run / "stats.jsonl"
    if not p.is_file():
        return [], 0
    records, torn = [], 0
    for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            torn += 1
    return records, torn


def keep_stats_until(run: Path, global_step: int) -> tuple[int, int]:
    """Drop the ``stats.jsonl`` rows (and torn lines) logged after ``global_step``, so a resume
    from that step's checkpoint logs them once; returns ``(rows dropped, torn lines dropped)``."""
    p = run / "stats.jsonl"
    records, torn = read_stats(run)
    keep = [r for r in records if r.get("global_step", 0) <= global_step]
    if len(keep) == len(records) and not torn:
        return 0, 0
    write_text(p, "".join(json.dumps(r) + "\n" for r in keep))
    return len(records) - len(keep), torn


def pose_image(pose: torch.Tensor) -> torch.Tensor:
    """Collapse 18 heatmaps (either mode) into a grey skeleton image in [-1, 1]."""
    m = pose.amax(1, keepdim=True)
    lo = m.amin(dim=(2, 3), keepdim=True)
    m = (m - lo) / (m.amax(dim=(2, 3), keepdim=True) - lo).clamp_min(1e-6)
    return (m * 2 - 1).expand(-1, 3, -1, -1)


def save_grid(path: Path, columns: list[torch.Tensor]) -> None:
    """Save rows of ``condition | target pose | outputs... | target`` as one PNG (making its
    folder: a run copied without ``samples/`` still resumes)."""
    rows = [
        np.concatenate([to_uint8(c[i]) for c in columns], axis=1)
        for i in range(columns[0].shape[0])
    ]
    grid = np.concatenate(rows, axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, ".png") as tmp:
        Image.fromarray(grid).save(tmp)


def plot_curves(run: Path) -> None:
    """Draw ``curves.png``: every loss in ``stats.jsonl`` against the global step."""
    stats = [s for s in read_stats(run)[0] if "losses" in s]
    if not stats:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({k for s in stats for k in s["losses"]})
    fig, axes = plt.subplots(len(keys), 1, figsize=(6, 2 * len(keys)), squeeze=False)
    for ax, k in zip(axes[:, 0], keys, strict=True):
        pts = [(s["global_step"], s["losses"][k]) for s in stats if k in s["losses"]]
        ax.plot(*zip(*pts, strict=True), lw=1)
        ax.set_ylabel(k)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("global step")
    fig.tight_layout()
    save_figure(run / "curves.png", fig, dpi=80)
