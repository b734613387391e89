"""``reidaug train``: train PG2 (or MsCGAN) generators."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import click
from click.core import ParameterSource

from reidaug.cli.app import App, pass_app, subset_options
from reidaug.cli.data import annotations_option, dataset_option, root_option
from reidaug.config import (
    PRESETS,
    Act,
    DeformOutput,
    Init,
    Norm,
    Skip,
    StageSel,
    TrainConfig,
    Upsample,
    Variant,
)
from reidaug.names import GENERATORS

_GIVEN = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


@click.command("train")
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    default="paper",
    show_default=True,
    help="Starting point for every option: the papers' settings, or cpu (width 16, additive "
    "skips, batch norm, nearest-1x1 upsampling, D width 16, batch 16, Adam 5e-4 decaying over "
    "the second half, 30000 + 10000 iterations). Flags given override it.",
)
@dataset_option
@root_option
@annotations_option
@click.option(
    "--model",
    type=click.Choice(GENERATORS),
    default="pg2",
    show_default=True,
    help="pg2 (Ma et al., NIPS 2017) or mscgan (Tang et al.; multi-scale discriminators).",
)
@click.option(
    "--variant",
    type=click.Choice(get_args(Variant)),
    default="full",
    show_default=True,
    help="PG2 ablation: G1 with L1, G1 with pose-mask L1, G1+D, or G1+G2+D.",
)
@click.option(
    "--stage",
    type=click.Choice(get_args(StageSel)),
    default="all",
    show_default=True,
    help="Train stage 1 (G1), stage 2 (G2 + D, from a run whose stage 1 is done) or both.",
)
@click.option(
    "--iters",
    type=click.IntRange(min=1),
    default=None,
    help="Iterations of every stage [default: the paper's, 22000 then 14000 for PG2].",
)
@click.option(
    "--iters1",
    type=click.IntRange(min=1),
    default=None,
    help="Stage-1 iterations (overrides --iters).",
)
@click.option(
    "--iters2",
    type=click.IntRange(min=1),
    default=None,
    help="Stage-2 iterations (overrides --iters).",
)
@click.option(
    "--minutes",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Time budget: checkpoint and stop after this many minutes.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Pairs per optimiser step (both papers: 16).",
)
@click.option(
    "--width",
    type=click.IntRange(min=1),
    default=128,
    show_default=True,
    help="Base channel count of the generators (128 in the papers).",
)
@click.option(
    "--d-width",
    type=click.IntRange(min=1),
    default=None,
    help="Base channels of D [default: model's].",
)
@click.option(
    "--lr",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Adam learning rate [default: model's].",
)
@click.option(
    "--lr-decay",
    type=click.FloatRange(min=0, max=1),
    default=0.0,
    show_default=True,
    help="Fraction of each stage's iterations, at its end, over which the learning rate falls "
    "linearly to zero (pix2pix's schedule; 0: constant, as both papers). With --minutes it also "
    "falls over that fraction of the time budget, whichever comes first.",
)
@click.option(
    "--ema",
    type=click.FloatRange(min=0, max=1, max_open=True),
    default=0.0,
    show_default=True,
    metavar="DECAY",
    help="Keep an exponential moving average of the generators' weights with this decay "
    "(e.g. 0.999) and evaluate and synthesize with it; 0: the last weights (both papers).",
)
@click.option(
    "--skip",
    type=click.Choice(get_args(Skip)),
    default="concat",
    show_default=True,
    help="How the generators' U-Net decoders take the encoder features: concatenated (the "
    "papers), added (about half the cost per image on a CPU), or added with the source "
    "person's features warped part by part to the target pose (deform: Deformable GAN's "
    "deformable skips; the part-warped source image is also an input).",
)
@click.option(
    "--deform-output",
    type=click.Choice(get_args(DeformOutput)),
    default="image",
    show_default=True,
    help="With --skip deform: G1 paints the whole image, or adds a correction (starting at "
    "zero) to the part-warped source image (residual).",
)
@click.option(
    "--act",
    type=click.Choice(get_args(Act)),
    default="relu",
    show_default=True,
    help="The generators' nonlinearity: ReLU (both papers' text) or ELU (PG2's released code, "
    "kept to reproduce it; it ran at half the speed on a CPU).",
)
@click.option(
    "--init",
    type=click.Choice(get_args(Init)),
    default="torch",
    show_default=True,
    help="The generators' initialisation: PyTorch's default, or Glorot-uniform weights with zero "
    "biases (PG2's released code, kept to reproduce it; with --act elu it lowered mask-SSIM).",
)
@click.option(
    "--norm",
    type=click.Choice(get_args(Norm)),
    default="none",
    show_default=True,
    help="Normalisation between every generator conv and its nonlinearity: none (both papers), "
    "batch (Pose-Transfer's generators; part of --preset cpu: it speeds up the start) or "
    "instance norm (pix2pix's).",
)
@click.option(
    "--upsample",
    type=click.Choice(get_args(Upsample)),
    default="paper",
    show_default=True,
    help="The generators' decoder upsampling: each paper's (PG2: nearest then a 3x3 conv; "
    "MsCGAN: transposed conv), or nearest then a 1x1 conv (PG2's released code; cheaper).",
)
@click.option(
    "--lambda-id",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Weight of the identity loss: cosine distance of frozen re-ID features of the "
    "generated image and the real target, in every generator stage (0: off, both papers).",
)
@click.option(
    "--id-checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Re-ID checkpoint (from bench-reid) of the identity loss [default: the cpu recipe, "
    "seed 2, trained once on the real training set and cached].",
)
@click.option(
    "--lambda-ssim",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Weight of 1 - SSIM (the posegan protocol's 11x11 Gaussian window) of each generated "
    "image against its target, in every generator stage (0: off, both papers).",
)
@click.option(
    "--lambda-nn",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    metavar="W",
    help="Weight of Deformable GAN's nearest-neighbour L1: each generated pixel against the "
    "closest target pixel in a --nn-kernel square, in every generator stage (0: off).",
)
@click.option(
    "--lambda-perceptual",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    metavar="W",
    help="Weight of the perceptual L1 on the frozen ImageNet MobileNetV2's --perceptual-layers "
    "block outputs of each generated image against its target, in every generator stage "
    "(0: off).",
)
@click.option(
    "--perceptual-layers",
    default=None,
    metavar="I,J,...",
    help="MobileNetV2 feature blocks of --lambda-perceptual, comma-separated, 0 to 18 "
    "[default: 1,3,6: 64x32, 32x16 and 16x8 at 128x64].",
)
@click.option(
    "--nn-kernel",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    metavar="K",
    help="Side of the nearest-neighbour loss's square, in pixels (odd): the misalignment it "
    "forgives is K // 2 pixels.",
)
@subset_options
@click.option(
    "--heatmap",
    type=click.Choice(["pg2", "gaussian"]),
    default="pg2",
    show_default=True,
    help="Pose input: PG2's filled keypoint disks, or Pose-Transfer's Gaussian heatmaps (as "
    "that code draws them).",
)
@click.option(
    "--no-flip",
    is_flag=True,
    help="Disable left-right flip augmentation (both papers flip; the control for it).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=None,
    help="Data loader processes [default: 0 on a CPU, whose cores the training uses, 1 on CUDA].",
)
@click.option(
    "--log-every",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Steps between rows of stats.jsonl (mean losses over the window).",
)
@click.option(
    "--sample-every",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Steps between sample sheets in RUN/samples/.",
)
@click.option(
    "--checkpoint-every",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Steps between checkpoints in RUN/checkpoints/.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs"),
    show_default=True,
    help="Folder of run directories.",
)
@click.option(
    "--resume",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Continue this run directory from its latest checkpoint.",
)
@click.option(
    "--lambda-l1",
    type=click.FloatRange(min=0),
    default=None,
    help="Weight of the L1 term in stage 2 [PG2: 10].",
)
@click.option(
    "--lambda-adv",
    type=click.FloatRange(min=0),
    default=None,
    help="PG2 weight of the adversarial term [1]; 0 trains no D (the control for the "
    "adversarial loss), so G2 (or G1 of --variant "
    "g1-d) learns the pose-mask L1 alone.",
)
@click.option(
    "--lambda-bg", type=click.FloatRange(min=0), default=None, help="MsCGAN background-loss weight."
)
@click.option(
    "--lambda-d1", type=click.FloatRange(min=0), default=None, help="MsCGAN weight of D1."
)
@click.option(
    "--lambda-d2", type=click.FloatRange(min=0), default=None, help="MsCGAN weight of D2."
)
@click.option(
    "--lambda-d3",
    type=click.FloatRange(min=0),
    default=None,
    help="MsCGAN weight of D3 (with --num-scales 3).",
)
@click.option(
    "--num-scales",
    type=click.IntRange(1, 3),
    default=2,
    show_default=True,
    help="MsCGAN discriminator scales.",
)
@pass_app
@click.pass_context
def train_cmd(ctx: click.Context, app: App, **kw) -> None:
    """Train pose-guided person generators; writes a run directory with checkpoints and samples.

    With --resume only the flags you pass change the run: iterations, --minutes, intervals,
    --lr, --lr-decay, loss weights, --workers, --device and --root of a moved dataset (each
    change is recorded with its step in training_options.json); the others define the run and
    are refused.

    Example: reidaug train --dataset market1501 --preset cpu --minutes 25
    """
    from reidaug.training import train

    given = {k for k in kw if ctx.get_parameter_source(k) in _GIVEN}
    for k in ("seed", "device"):  # the global options count when given on the command line
        if ctx.parent is not None and ctx.parent.get_parameter_source(k) in _GIVEN:
            given.add(k)
            kw[k] = getattr(app, k)
    resume: Path | None = kw.pop("resume")
    given.discard("resume")
    if resume is not None and ctx.get_parameter_source("root") is ParameterSource.ENVIRONMENT:
        # the run's recorded root wins over $REIDAUG_DATA; only an explicit --root moves it
        given.discard("root")
    if "perceptual_layers" in given and resume is None and not kw["lambda_perceptual"]:
        raise click.UsageError(
            "--perceptual-layers picks the perceptual loss's blocks; add --lambda-perceptual W"
        )
    if "nn_kernel" in given and resume is None and not kw["lambda_nn"]:
        raise click.UsageError("--nn-kernel sizes the nearest-neighbour loss; add --lambda-nn W")
    if "num_scales" in given and resume is None and kw["model"] == "pg2":
        raise click.UsageError("--num-scales sets MsCGAN's discriminators; add --model mscgan")
    opts = _options(kw, given)
    if resume is not None:
        why = {"out": "the run stays in its directory", "preset": "a run keeps its preset"}
        for flag, reason in why.items():
            if flag in given:
                raise click.UsageError(f"--{flag} cannot be used with --resume ({reason})")
        cfg = None
    else:
        cfg = TrainConfig.from_preset(
            kw["preset"], **{"seed": app.seed, "device": app.device, **opts}
        )
    with app.progress("training") as update:
        changes = opts if resume is not None else None
        run = train(cfg, resume=resume, progress=update, log=app.debug, changes=changes)
    click.echo(f"run directory: {run}")


def _layers(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise click.UsageError(
            f"--perceptual-layers takes comma-separated block indices, got {text!r}"
        ) from None


def _options(kw: dict, given: set[str]) -> dict:
    """``TrainConfig`` fields from the flags the user passed (defaults come from the preset or
    the resumed run, never from the flags' own defaults)."""
    rename = {"minutes": "max_seconds", "no_flip": "flip"}
    convert = {
        "minutes": lambda v: v * 60,
        "no_flip": lambda v: not v,
        "out": str,
        "root": lambda v: str(v.expanduser().resolve()),
        "annotations": lambda v: str(v.expanduser().resolve()),
        "id_checkpoint": lambda v: str(v.expanduser().resolve()),
        "perceptual_layers": _layers,
    }
    opts = {}
    for k in sorted(given - {"iters", "preset"}):
        v = kw[k]
        opts[rename.get(k, k)] = convert[k](v) if k in convert and v is not None else v
    if "iters" in given:  # --iters1 / --iters2 win over --iters
        opts.setdefault("iters1", kw["iters"])
        opts.setdefault("iters2", kw["iters"])
    return opts
