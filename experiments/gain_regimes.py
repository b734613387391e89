"""The gain table and figure of a multi-regime re-ID bench: one ``bench-reid`` report per regime.

    python experiments/gain_regimes.py docs/results/reid-gain-regimes \\
        --regime k2=2 --regime k4=4 --regime full=full

Each ``--regime NAME=X`` names a folder ``STUDY/NAME/`` holding the regime's ``report.json``
and its real images per identity (``full``: the training set's mean). Writes
``STUDY/gain-table.md`` (regime x arm: mean ± std, paired delta against the baseline with its
95 % interval, verdict, smallest detectable effect; test-time fusion rows against
flip-averaging) and ``STUDY/map-vs-real.png`` (mAP against real images per identity, one line
per arm, 95 % intervals over seeds). Regimes without a report yet are left out.

``--times OUT/times.tsv`` (the driver's step log) adds ``STUDY/time-table.md``: wall time per
regime of generator training, synthesis and shard check (from the log), pilots (their reports),
re-ID training (the sum over the bench's (arm, seed) units, resumed units counted once) and
test-time fusion (the bench's timing: views, features and ranking).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from reidaug.atomic import save_figure, write_text

ARM_ORDER = ("baseline", "augmented", "baseline-matched")
MARKET_TRAIN_IDS = 751


def ci_half(values: list[float]) -> float:
    """Half-width of the Student-t 95 % interval of the mean (0 for one value)."""
    from scipy.stats import t

    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return 0.0
    return float(t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))


def pct(x: float) -> str:
    return f"{100 * x:.2f}"


def delta_cells(pd: dict) -> list[str]:
    """Delta, interval, verdict and smallest detectable effect of one paired comparison (mAP)."""
    ci = pd.get("ci95")
    interval = f"[{pct(ci[0])}, {pct(ci[1])}]" if ci else "-"
    mde = pd.get("detectable")
    mde_text = f"{100 * mde:.2f}" if mde is not None and np.isfinite(mde) else "-"
    return [f"{100 * pd['mean']:+.2f}", interval, pd["verdict"], mde_text]


def table(reports: dict[str, tuple[str, dict]]) -> list[str]:
    """Markdown rows of every regime's arms and test-time comparisons."""
    lines = [
        "| regime | arm | seeds | mAP | Rank-1 | paired Δ mAP | 95 % interval | verdict | "
        "smallest detectable Δ |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, (_, rep) in reports.items():
        for arm in ARM_ORDER:
            if arm not in rep["summary"]:
                continue
            s = rep["summary"][arm]
            cells = [
                name,
                arm,
                str(s["mAP"]["n"]),
                f"{pct(s['mAP']['mean'])} ± {pct(s['mAP']['std'])}",
                f"{pct(s['rank1']['mean'])} ± {pct(s['rank1']['std'])}",
            ]
            pd = rep["paired_deltas"].get(f"{arm} - baseline")
            cells += delta_cells(pd["mAP"]) if pd else ["", "", "", ""]
            lines.append("| " + " | ".join(cells) + " |")
        if "augmented - baseline-matched" in rep["paired_deltas"]:
            pd = rep["paired_deltas"]["augmented - baseline-matched"]["mAP"]
            row = [name, "augmented - baseline-matched", str(pd["n"]), "", "", *delta_cells(pd)]
            lines.append("| " + " | ".join(row) + " |")
        tt = rep.get("test_time")
        if tt:
            for arm, rows in tt["paired_vs_flip"].items():
                pd = rows["pose-fused + flip"]["mAP"]
                s = tt["summary"][arm]["pose-fused + flip"]
                label = f"{arm}, pose-fused + flip - flip-averaged (K = {tt['poses']})"
                cells = [
                    name,
                    label,
                    str(pd["n"]),
                    f"{pct(s['mAP']['mean'])} ± {pct(s['mAP']['std'])}",
                    f"{pct(s['rank1']['mean'])} ± {pct(s['rank1']['std'])}",
                    *delta_cells(pd),
                ]
                lines.append("| " + " | ".join(cells) + " |")
            if {"baseline", "augmented"} <= set(tt["runs"]):
                lines.append(combined_row(name, tt))
    return lines


def combined_row(name: str, tt: dict) -> str:
    """Training-time and test-time use together: the augmented models' pose-fused + flip
    features against the baseline models' flip-averaged ones, paired by seed."""
    from reidaug.bench.stats import paired_delta

    base = {r["seed"]: r["flip-averaged"]["mAP"] for r in tt["runs"]["baseline"]}
    aug = {r["seed"]: r["pose-fused + flip"]["mAP"] for r in tt["runs"]["augmented"]}
    seeds = sorted(base.keys() & aug.keys())
    pd = paired_delta([base[s] for s in seeds], [aug[s] for s in seeds])
    label = "augmented, pose-fused + flip - baseline, flip-averaged"
    return "| " + " | ".join([name, label, str(len(seeds)), "", "", *delta_cells(pd)]) + " |"


def step_seconds(times: Path) -> dict[str, float]:
    """Seconds per finished step of the driver's ``times.tsv`` (``STEP<tab>SECONDS<tab>CMD``)."""
    if not times.is_file():
        raise SystemExit(f"Error: {times} does not exist")
    out: dict[str, float] = {}
    for n, line in enumerate(times.read_text().splitlines(), 1):
        name, _, rest = line.partition("\t")
        try:
            sec = float(rest.split("\t")[0])
        except ValueError:
            raise SystemExit(f"Error: {times}:{n} is not STEP<tab>SECONDS<tab>CMD") from None
        out[name] = out.get(name, 0.0) + sec
    return out


def time_table(study: Path, reports: dict[str, tuple[float, dict]], steps: dict) -> list[str]:
    """Markdown rows of the wall time (hours) each regime took, by stage."""

    def hours(sec: float | None) -> str:
        return "-" if sec is None else f"{sec / 3600:.2f}"

    lines = [
        "| regime | generator | synthesis | shard check | pilots | re-ID training | "
        "test-time fusion | total |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, (_, rep) in reports.items():
        pilots = [
            json.loads(p.read_text()) for p in sorted((study / name).glob("pilot-*/report.json"))
        ]
        # pilots of different label schemes share their baseline unit: count it once
        units = {
            (arm, r["seed"], p["config"]["label"] if arm == "augmented" else ""): r["seconds"]
            for p in pilots
            for arm, rs in p["runs"].items()
            for r in rs
        }
        cells = [
            steps.get(f"{name}-gen"),
            steps.get(f"{name}-synth"),
            steps.get(f"{name}-check"),
            sum(units.values()) if units else None,
            rep["seconds"],
            fusion_seconds((rep.get("test_time") or {}).get("timing", {})),
        ]
        total = sum(c for c in cells if c is not None)
        lines.append("| " + " | ".join([name, *map(hours, cells), hours(total)]) + " |")
    return lines


def fusion_seconds(timing: dict) -> float | None:
    """Views, features and ranking of the test-time pass (reports before ranking was timed
    hold only the first two)."""
    parts = [timing[k] for k in ("seconds", "ranking_seconds") if k in timing]
    return sum(parts) if parts else None


def figure(reports: dict[str, tuple[float, dict]], path: Path) -> None:
    """mAP against real images per identity, one line per arm, 95 % intervals over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for arm in ARM_ORDER:
        xs, ys, es = [], [], []
        for x, rep in sorted(reports.values(), key=lambda r: r[0]):
            runs = rep["runs"].get(arm)
            if not runs:
                continue
            vals = [100 * r["mAP"] for r in runs]
            xs.append(x)
            ys.append(float(np.mean(vals)))
            es.append(ci_half(vals))
        if xs:
            ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=arm)
    ax.set_xscale("log", base=2)
    ticks = sorted(x for x, _ in reports.values())
    ax.set_xticks(ticks, [f"{x:g}" for x in ticks])
    ax.set_xlabel("real training images per identity")
    ax.set_ylabel("mAP (%) on Market-1501 query/gallery")
    ax.set_title("re-ID mAP against real data, mean and 95 % interval over seeds")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure(path, fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study", type=Path)
    ap.add_argument(
        "--regime",
        action="append",
        required=True,
        help="NAME=X: folder STUDY/NAME and its real images per id (a number, or 'full')",
    )
    ap.add_argument("--times", type=Path, help="the driver's times.tsv, for STUDY/time-table.md")
    args = ap.parse_args()
    steps = step_seconds(args.times) if args.times else None
    found: dict[str, tuple[float, dict]] = {}
    for spec in args.regime:
        name, _, x = spec.partition("=")
        path = args.study / name / "report.json"
        if not path.is_file():
            continue
        rep = json.loads(path.read_text())
        ids = (rep.get("subset") or {}).get("ids", MARKET_TRAIN_IDS)
        per_id = rep["train_images"] / ids if x == "full" else float(x)
        found[name] = (per_id, rep)
    if not found:
        raise SystemExit(f"Error: no report.json under {args.study}/<regime>/")
    text = "\n".join(table({k: (k, v[1]) for k, v in found.items()})) + "\n"
    write_text(args.study / "gain-table.md", text)
    figure(found, args.study / "map-vs-real.png")
    print(text)
    if steps is not None:
        rows = "\n".join(time_table(args.study, found, steps)) + "\n"
        write_text(args.study / "time-table.md", rows)
        print(rows)


if __name__ == "__main__":
    main()
