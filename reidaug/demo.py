"""The whole pipeline on the embedded procedural dataset, in one call (what ``reidaug demo`` runs).

Steps: make the dataset, train a small PG2 (G1 then G2 + D), synthesize every training image in
``poses`` new poses into HDF5 shards, run the re-ID bench with and without them, and score the
generator on the held-out test pairs (SSIM, mask-SSIM, sharpness and idp, each next to the copy
baseline and the real target). Everything lands under one folder.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from reidaug.atomic import write_json, write_text
from reidaug.bench import BenchConfig, bench
from reidaug.config import TrainConfig
from reidaug.data import SyntheticMarket, make_synthetic
from reidaug.errors import UserError
from reidaug.metrics import evaluate
from reidaug.metrics.evaluate import COPY, REAL
from reidaug.progress import relabel
from reidaug.synthesis import ShardDataset, synthesize
from reidaug.training import checkpoint as ckpt_io
from reidaug.training import train


@dataclass
class DemoConfig:
    """Sizes of the demo; the defaults take about 10 minutes on 2 CPU cores."""

    out: str = "demo-out"
    ids: int = 32
    test_pairs: int = 300
    width: int = 16
    batch_size: int = 8
    iters1: int = 1200
    iters2: int = 400
    poses: int = 4
    reid_epochs: int = 8
    seed: int = 0
    device: str = "cpu"
    workers: int | None = None  # None: the training default (0 on a CPU)


STEPS = ("dataset", "train PG2", "synthesize", "bench-reid", "evaluate")


def demo(
    cfg: DemoConfig,
    progress: Callable[..., None] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Run every stage on the embedded dataset under ``cfg.out``; return (and write
    ``summary.json``/``summary.md``) the summary: one row per figure with its baseline.

    ``progress(done, total, STEP)`` reports within a step; ``log`` gets one line as each step
    starts and ends, saying where its output went.

    Example:
        >>> summary = demo(DemoConfig(out="demo-out"))  # doctest: +SKIP
        >>> [r["row"] for r in summary["rows"]][:2]  # doctest: +SKIP
        ['SSIM (posegan)', 'mask-SSIM (posegan)']
    """
    log = log or (lambda msg: None)
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    t0, times = time.time(), {}

    def step(i: int, what: str):
        log(f"[{i}/{len(STEPS)}] {what}")

        return relabel(progress, STEPS[i - 1])

    # 1. dataset (reused when a previous demo made it with the same size)
    data = out / "data"
    t = time.time()
    info = data / "info.json"
    if info.is_file() and _read_info(info).get("ids") == cfg.ids:
        log(f"[1/{len(STEPS)}] dataset: reusing {data}")
    else:
        report = step(1, f"making the embedded dataset ({cfg.ids} ids) in {data}")
        if data.exists():
            raise UserError(f"{data} holds another dataset: remove it or pick another --out")
        make_synthetic(data, ids=cfg.ids, seed=cfg.seed, test_pairs=cfg.test_pairs, progress=report)
    ds = SyntheticMarket(data)
    times["dataset"] = time.time() - t

    # 2. PG2, both stages
    t = time.time()
    report = step(2, f"training PG2: G1 {cfg.iters1} iterations, then G2 + D {cfg.iters2}")
    tcfg = TrainConfig(
        model="pg2",
        dataset="synthetic",
        root=str(data),
        width=cfg.width,
        d_width=cfg.width,
        batch_size=cfg.batch_size,
        lr=5e-4,
        iters1=cfg.iters1,
        iters2=cfg.iters2,
        sample_every=max(1, (cfg.iters1 + cfg.iters2) // 4),
        checkpoint_every=10**9,
        log_every=max(1, cfg.iters1 // 20),
        workers=cfg.workers,
        seed=cfg.seed,
        device=cfg.device,
        out=str(out / "runs"),
    )
    run = train(tcfg, progress=report)
    grids = sorted((run / "samples").glob("step-*.png"))
    if grids:  # the final sample grid, at the top of the folder
        shutil.copyfile(grids[-1], out / "samples.png")
    log(
        f"      run directory {run} (samples/, curves.png, checkpoints/); final samples "
        f"{out / 'samples.png'}"
    )
    times["train PG2"] = time.time() - t

    # 3. synthesis
    t = time.time()
    shards = out / "shards"
    report = step(3, f"synthesizing every training image in {cfg.poses} poses into {shards}")
    syn = synthesize(
        shards,
        run=run,
        poses=cfg.poses,
        batch_size=64,
        seed=cfg.seed,
        device=cfg.device,
        workers=0,
        command="reidaug demo",
        progress=report,
    )
    times["synthesize"] = time.time() - t

    # 4. re-ID bench
    t = time.time()
    bench_out = out / "bench-reid"
    report = step(
        4,
        f"re-ID bench ({BenchConfig().model}, {cfg.reid_epochs} epochs) without and with the "
        f"synthetic images -> {bench_out}",
    )
    rep = bench(
        BenchConfig.from_recipe(
            "cpu",
            dataset="synthetic",
            root=str(data),
            shards=str(shards),
            epochs=cfg.reid_epochs,
            batch_size=32,
            seeds=[cfg.seed + 1],
            workers=0,
            out=str(bench_out),
            device=cfg.device,
        ),
        progress=report,
    )
    times["bench-reid"] = time.time() - t

    # 5. image quality on held-out pairs, with the bench's baseline re-ID model for idp
    t = time.time()
    report = step(5, f"scoring G1 and G2 on {len(ds.test_pairs())} held-out test pairs")
    records = evaluate(
        run=run,
        protocols=["posegan"],
        metrics=["ssim", "mssim", "sharpness", "idp"],
        device=cfg.device,
        progress=report,
        reid_checkpoint=bench_out / f"baseline-seed{cfg.seed + 1}.pt",
    )
    times["evaluate"] = time.time() - t

    summary = _summary(cfg, ds, run, syn, rep, records, times, time.time() - t0)
    _write(out, summary)
    log(f"summary written to {out / 'summary.md'}")
    return summary


def _summary(cfg, ds, run, syn, rep, records, times, seconds) -> dict:
    v = {(r["metric"], r["source"]): r["value"] for r in records}
    rows = []
    for metric, label in (
        ("ssim", "SSIM"),
        ("mssim", "mask-SSIM"),
        ("lapvar", "Laplacian var. / real"),
        ("hfe", "HF energy / real"),
        ("idp-rank1", "idp Rank-1"),
        ("idp-mAP", "idp mAP"),
    ):
        rows.append(
            {
                "row": label,
                "G1": v[(metric, "G1")],
                "G2": v[(metric, "G2")],
                "copy baseline": v[(metric, COPY)],
                "real target": v[(metric, REAL)],
            }
        )
    s, d = rep["summary"], rep["delta"]
    for k, label in (("mAP", "re-ID mAP"), ("rank1", "re-ID Rank-1")):
        rows.append(
            {
                "row": label,
                "baseline": s["baseline"][k]["mean"],
                "augmented": s["augmented"][k]["mean"],
                "delta": d[k],
            }
        )
    ck = ckpt_io.latest(run)
    return {
        "config": asdict(cfg),
        "dataset": {"train_images": len(ds.train), "test_pairs": len(ds.test_pairs())},
        "run": str(run),
        "checkpoint": str(ck),
        "synthetic_images": len(ShardDataset(syn["out"])),
        "rows": rows,
        "seconds": {k: round(x, 1) for k, x in times.items()},
        "total_seconds": round(seconds, 1),
        "reid_model": rep["config"]["model"],
    }


def _write(out: Path, summary: dict) -> None:
    write_json(out / "summary.json", summary)
    lines = [
        "# reidaug demo",
        "",
        "| figure | G1 | G2 | copy baseline | real target |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in summary["rows"]:
        if "G1" in r:
            lines.append(
                f"| {r['row']} | "
                + " | ".join(f"{r[k]:.3f}" for k in ("G1", "G2", "copy baseline", "real target"))
                + " |"
            )
    lines += ["", "| re-ID | baseline | augmented | delta |", "| --- | --- | --- | --- |"]
    for r in summary["rows"]:
        if "baseline" in r:
            lines.append(
                f"| {r['row']} | {100 * r['baseline']:.1f} | {100 * r['augmented']:.1f} | "
                f"{100 * r['delta']:+.1f} |"
            )
    lines += [
        "",
        f"Total {summary['total_seconds']:.0f} s: "
        + ", ".join(f"{k} {s:.0f} s" for k, s in summary["seconds"].items())
        + ".",
    ]
    write_text(out / "summary.md", "\n".join(lines) + "\n")


def _read_info(path: Path) -> dict:
    """The embedded dataset's ``info.json``; a damaged one names itself."""
    try:
        info = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(
            f"cannot read {path} ({type(e).__name__}): remove {path.parent} to make it again"
        ) from None
    if not isinstance(info, dict):
        raise UserError(f"{path} is not the embedded dataset's info: remove {path.parent}")
    return info
