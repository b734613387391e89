"""The bench's report: mean ± std per arm, paired deltas, ``report.md`` and ``cmc.png``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from reidaug.atomic import save_figure, write_json, write_text
from reidaug.bench.config import METRIC_KEYS, BenchConfig
from reidaug.bench.plan import images_per_step, steps_per_epoch
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


def build_report(
    cfg: BenchConfig,
    out: Path,
    ds: Market1501,
    n_synthetic: int,
    synthetic_filter: dict | None = None,
) -> dict:
    """The report of the finished (arm, seed) results in ``out`` for ``cfg``'s seeds and arms;
    ``synthetic_filter`` is what ``--min-confidence`` kept and dropped."""
    runs = {arm: [read_result(out / f"{arm}-seed{s}.json") for s in cfg.seeds] for arm in cfg.arms}
    for rs in runs.values():
        for r in rs:
            r.pop("key", None)
    summary = {
        arm: {k: mean_std([r[k] for r in rs]) for k in METRIC_KEYS} for arm, rs in runs.items()
    }
    report = {
        "config": asdict(cfg),
        "weights": weights_text(cfg.pretrained),
        "steps": "extra (synthetic added on top)"
        if cfg.extra_steps
        else "equal (synthetic added to each batch)"
        if cfg.mix == "add"
        else "equal (synthetic replace a share of each batch)",
        "arms": {arm: arm_info(cfg, arm, len(ds.train)) for arm in cfg.arms},
        "train_images": len(ds.train),
        "subset": ds.subset,
        "validation": ds.validation,
        "synthetic_images_available": n_synthetic,
        "synthetic_filter": synthetic_filter,
        "runs": runs,
        "summary": summary,
        "seconds": round(sum(r["seconds"] for rs in runs.values() for r in rs), 1),
    }
    pairs = [("baseline", "augmented"), ("baseline", "baseline-matched"),
             ("baseline-matched", "augmented")]  # fmt: skip
    report["paired_deltas"] = {}
    for a, b in pairs:
        if a in runs and b in runs:
            pd = {
                k: paired_delta([r[k] for r in runs[a]], [r[k] for r in runs[b]])
                for k in METRIC_KEYS
            }
            report["paired_deltas"][f"{b} - {a}"] = {
                k: {"seeds": list(cfg.seeds), **v} for k, v in pd.items()
            }
    if "augmented - baseline" in report["paired_deltas"]:
        report["paired_delta"] = report["paired_deltas"]["augmented - baseline"]
        report["delta"] = {k: v["mean"] for k, v in report["paired_delta"].items()}
    return report


def arm_info(cfg: BenchConfig, arm: str, n_real: int) -> dict:
    """What an arm trains on: its mix, steps per epoch and images per step."""
    real, syn = images_per_step(cfg, arm)
    return {
        "mix": "real only" if arm != "augmented" else cfg.mix,
        "steps_per_epoch": steps_per_epoch(cfg, n_real, arm == "augmented"),
        "real_images_per_step": real,
        "synthetic_images_per_step": syn,
    }


def label_text(c: dict) -> str:
    """How synthetic images were labelled, for the report."""
    if c["label"] == "teacher":
        return (
            f"teacher (each seed's baseline model, softmax at temperature "
            f"{c['teacher_temperature']:g})"
        )
    return c["label"]


def filter_lines(f: dict | None) -> list[str]:
    """The report's sentence on ``--min-confidence`` (nothing without it)."""
    if not f:
        return []
    return [
        f"Synthetic images filtered with --min-confidence {f['min_confidence']:g} (the judge "
        f"{f['judge']}'s probability of the source id): kept {f['kept']} of {f['available']}, "
        f"dropped {f['dropped']}.",
        "",
    ]


def delta_text(d: dict) -> str:
    """``+1.2 [-0.3, +2.7] gain`` in percentage points, for tables."""
    ci = (
        "no interval (1 seed)"
        if d["ci95"] is None
        else f"[{100 * d['ci95'][0]:+.1f}, {100 * d['ci95'][1]:+.1f}]"
    )
    mde = d.get("detectable")
    smallest = "" if mde is None or mde != mde else f" (detects {100 * mde:.1f})"
    return f"{100 * d['mean']:+.1f} {ci} {d['verdict']}{smallest}"


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
    for name, pd in report.get("paired_deltas", {}).items():
        rows.append((f"{name}, 95 % CI", [delta_text(pd[k]) for k in METRIC_KEYS]))
    return rows


def test_time_lines(tt: dict | None) -> list[str]:
    """The report's test-time section: four rows per arm and the paired deltas against
    flip-averaging (nothing without ``--test-poses``)."""
    if not tt:
        return []
    src = ", ".join(f"{v} {k}" for k, v in tt["pose_sources"].items() if v)
    lines = [
        "",
        f"## Test-time pose fusion: {tt['poses']} canonical poses, {tt['fusion']} fusion "
        f"(weight {tt['fusion_weight']:g} for the original)",
        "",
        f"Generator: {tt['generator']}. Test-image poses: {src} (an image with none keeps "
        "its plain feature).",
        "",
        "| arm | features | mAP | Rank-1 | Rank-5 | Rank-10 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for arm, rows in tt["summary"].items():
        for row, m in rows.items():
            cells = [f"{100 * m[k]['mean']:.1f} ± {100 * m[k]['std']:.1f}" for k in METRIC_KEYS]
            lines.append(f"| {arm} | {row} | " + " | ".join(cells) + " |")
    for arm, rows in tt["paired_vs_flip"].items():
        for row, pd in rows.items():
            cells = [delta_text(pd[k]) for k in METRIC_KEYS]
            lines.append(f"| {arm} | {row} - flip-averaged, 95 % CI | " + " | ".join(cells) + " |")
    t = tt["timing"]
    if "models" in t:
        names = ", ".join(Path(ck).name for ck in t["models"])
        lines += [
            "",
            f"Views generated once and embedded by {len(t['models'])} model(s) ({names}): "
            f"{t['seconds']:.0f} s, {t['images_s']} images/s.",
        ]
    if "ranking_seconds" in t:
        lines += ["", f"Ranking the four rows of every model: {t['ranking_seconds']:.0f} s."]
    return lines


def environment_text(env: dict | None) -> str:
    """One environment of ``reidaug.device.environment`` in a few words."""
    if not env:
        return "not recorded"
    where = env["device_name"] or f"{env['cpu']}, {env['threads']} threads"
    return f"torch {env['torch']}, torchreid {env['torchreid']}, {env['device']} ({where})"


def environment_lines(runs: dict[str, list[dict]]) -> list[str]:
    """Where the runs were made; runs of several machines are named per machine, since CPU
    training does not reproduce bit for bit across them."""
    where: dict[str, list[str]] = {}
    for arm, rs in runs.items():
        for r in rs:
            where.setdefault(environment_text(r.get("environment")), []).append(
                f"{arm} seed {r['seed']}"
            )
    if len(where) == 1:
        return ["", f"Made with {next(iter(where))}."]
    return [
        "",
        f"The runs were made in {len(where)} environments (training does not reproduce bit for "
        "bit across machines):",
        "",
        *(f"- {env}: {', '.join(units)}" for env, units in where.items()),
    ]


def mixed_lines(mixed: list[dict] | None) -> list[str]:
    """The results a ``--report-only`` report kept although other options made them."""
    if not mixed:
        return []
    return [
        "",
        "Made with other options than this report's command (kept by --report-only; the "
        "fields that differ):",
        "",
        *(f"- {m['arm']} seed {m['seed']}: {', '.join(m['fields'])}" for m in mixed),
    ]


def weights_text(pretrained: str | None) -> str:
    """How the backbone started: from scratch, or from which ImageNet weights."""
    if not pretrained:
        return "from scratch"
    if pretrained == "imagenet":
        return "ImageNet (found offline)"
    return f"ImageNet from {pretrained}"


def validation_lines(v: dict | None) -> list[str]:
    """The report's note that its figures rank a validation split, not the test set."""
    if not v:
        return []
    return [
        f"**Validation split, not the test set:** {v['ids']} training identities held out "
        f"(seed {v['seed']}): {v['query']} queries against {v['gallery']} gallery images.",
        "",
    ]


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
        f"{', '.join(c['transforms'])}, labels {label_text(c)}, synthetic ratio "
        f"{c['synthetic_ratio']}, "
        f"steps: {report['steps']}, seeds {c['seeds']}, weights: {report['weights']}.",
        "",
        "| arm | mix | steps / epoch | real + synthetic images / step |",
        "| --- | --- | --- | --- |",
        *(
            f"| {arm} | {a['mix']} | {a['steps_per_epoch']} | "
            f"{a['real_images_per_step']} + {a['synthetic_images_per_step']} |"
            for arm, a in report.get("arms", {}).items()
        ),
        "",
        *filter_lines(report.get("synthetic_filter")),
        *validation_lines(report.get("validation")),
        "| arm | mAP | Rank-1 | Rank-5 | Rank-10 |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [f"| {name} | " + " | ".join(cells) + " |" for name, cells in summary_rows(report)]
    for name, pd in report.get("paired_deltas", {}).items():
        lines += ["", f"Per-seed deltas ({name}, percentage points):", ""]
        for i, seed in enumerate(pd["mAP"]["seeds"]):
            lines.append(
                f"- seed {seed}: "
                + ", ".join(f"{k} {100 * pd[k]['per_seed'][i]:+.1f}" for k in METRIC_KEYS)
            )
    if report.get("paired_deltas"):
        lines += [
            "",
            'Each interval is a Student-t 95 % interval over the seeds; "detects" is the '
            "smallest true difference the run finds with 80 % power (paired t-test).",
        ]
    lines += test_time_lines(report.get("test_time"))
    lines += ["", f"Training time: {report['seconds'] / 60:.1f} min over all runs."]
    lines += environment_lines(report["runs"])
    lines += mixed_lines(report.get("mixed_options"))
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
