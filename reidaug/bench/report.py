"""The bench's report: mean ± std per arm, paired deltas, ``report.md`` and ``cmc.png``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from reidaug.atomic import save_figure, write_json, write_text
from reidaug.bench.config import ARMS, METRIC_KEYS, BenchConfig
from reidaug.bench.stats import mean_std, paired_delta
from reidaug.data.market1501 import Market1501
from reidaug.errors import UserError


def read_result(path: Path) -> dict:
    """A finished (arm, seed) result file; an unreadable one names itself."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(
            f"cannot read {path} ({type(e).__name__}); remove it to redo that run"
        ) from None


def build_report(cfg: BenchConfig, out: Path, ds: Market1501, n_synthetic: int) -> dict:
    """The report of the finished (arm, seed) results in ``out`` for ``cfg``'s seeds and arms."""
    runs = {arm: [read_result(out / f"{arm}-seed{s}.json") for s in cfg.seeds] for arm in cfg.arms}
    for rs in runs.values():
        for r in rs:
            r.pop("key", None)
    summary = {
        arm: {k: mean_std([r[k] for r in rs]) for k in METRIC_KEYS} for arm, rs in runs.items()
    }
    report = {
        "config": asdict(cfg),
        "weights": f"ImageNet from {cfg.pretrained}" if cfg.pretrained else "from scratch",
        "steps": "extra (synthetic added on top)"
        if cfg.extra_steps
        else "equal (synthetic replace a share of each batch)",
        "train_images": len(ds.train),
        "synthetic_images_available": n_synthetic,
        "runs": runs,
        "summary": summary,
        "seconds": round(sum(r["seconds"] for rs in runs.values() for r in rs), 1),
    }
    if set(ARMS) <= set(runs):
        pd = {
            k: paired_delta([r[k] for r in runs["baseline"]], [r[k] for r in runs["augmented"]])
            for k in METRIC_KEYS
        }
        report["paired_delta"] = {k: {"seeds": list(cfg.seeds), **v} for k, v in pd.items()}
        report["delta"] = {k: v["mean"] for k, v in pd.items()}
    return report


def delta_text(d: dict) -> str:
    """``+1.2 [-0.3, +2.7] gain`` in percentage points, for tables."""
    ci = (
        "no interval (1 seed)"
        if d["ci95"] is None
        else f"[{100 * d['ci95'][0]:+.1f}, {100 * d['ci95'][1]:+.1f}]"
    )
    return f"{100 * d['mean']:+.1f} {ci} {d['verdict']}"


def summary_rows(report: dict) -> list[tuple[str, list[str]]]:
    """The report's table: one row per arm (mean ± std over seeds, in %), then the paired delta
    with its 95 % interval when both arms ran; columns are ``METRIC_KEYS``."""
    s = report["summary"]
    rows = [
        (
            arm,
            [f"{100 * s[arm][k]['mean']:.1f} ± {100 * s[arm][k]['std']:.1f}" for k in METRIC_KEYS],
        )
        for arm in s
    ]
    if "paired_delta" in report:
        pd = report["paired_delta"]
        rows.append(("paired delta, 95 % CI", [delta_text(pd[k]) for k in METRIC_KEYS]))
    return rows


def write_report(out: Path, report: dict) -> None:
    """``report.json``, ``report.md`` and ``cmc.png``, each written to a temp file and renamed."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "report.json", report)
    c = report["config"]
    lines = [
        f"# re-ID benchmark: {c['model']} on {c['dataset']} ({c['recipe']} recipe)",
        "",
        f"{c['height']}x{c['width']}, {c['epochs']} epochs, batch {c['batch_size']}, {c['optim']} "
        "lr "
        f"{c['lr']:g}, weight decay {c['weight_decay']:g}, {c['scheduler']} schedule, transforms "
        f"{', '.join(c['transforms'])}, labels {c['label']}, synthetic ratio "
        f"{c['synthetic_ratio']}, "
        f"steps: {report['steps']}, seeds {c['seeds']}, weights: {report['weights']}.",
        "",
        "| arm | mAP | Rank-1 | Rank-5 | Rank-10 |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [f"| {name} | " + " | ".join(cells) + " |" for name, cells in summary_rows(report)]
    if "paired_delta" in report:
        pd = report["paired_delta"]
        lines += ["", "Per-seed deltas (augmented - baseline, percentage points):", ""]
        for i, seed in enumerate(pd["mAP"]["seeds"]):
            lines.append(
                f"- seed {seed}: "
                + ", ".join(f"{k} {100 * pd[k]['per_seed'][i]:+.1f}" for k in METRIC_KEYS)
            )
    lines += ["", f"Training time: {report['seconds'] / 60:.1f} min over all runs."]
    write_text(out / "report.md", "\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for arm, rs in report["runs"].items():
        cmc = np.mean([r["cmc"] for r in rs], axis=0)
        ax.plot(np.arange(1, len(cmc) + 1), 100 * cmc, label=arm)
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure(out / "cmc.png", fig)
