"""One way from a run directory (or a checkpoint file) to a trained generator."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from reidaug.config import TrainConfig
from reidaug.device import resolve_device
from reidaug.errors import UserError
from reidaug.training import checkpoint as ckpt_io
from reidaug.training.recipe import Recipe, build_recipe
from reidaug.weights import file_sha256


@dataclass(frozen=True)
class Generator:
    """A trained model with where it came from.

    Attributes:
        recipe: the step recipe holding the networks (``recipe.generate``, ``recipe.final``).
        config: the training config stored in the checkpoint (the one source of truth), with
            ``root`` replaced when the dataset moved.
        stored_config: that config exactly as the checkpoint holds it (to record provenance).
        checkpoint: the checkpoint file loaded.
        sha256: its SHA-256, to record with everything made from it.
        run: the run directory (the checkpoint's grandparent unless given).
        step: the global step of the checkpoint.
        untrained: networks of stages the checkpoint never reached (an untrained PG2 G2 adds a
            zero residual, so its output would repeat G1's under another name).
        averaged: networks whose moving-average weights (``--ema``) were loaded instead of the
            last ones.
    """

    recipe: Recipe
    config: TrainConfig
    stored_config: dict
    checkpoint: Path
    sha256: str
    run: Path
    step: int
    untrained: frozenset[str]
    averaged: tuple[str, ...] = ()


def _untrained(recipe: Recipe, state: dict) -> frozenset[str]:
    stages = recipe.stages()
    reached = [
        i < state["stage_index"] or (i == state["stage_index"] and state["stage_step"] > 0)
        for i in range(len(stages))
    ]
    trained = {n for st, ok in zip(stages, reached, strict=True) if ok for n in st.trains}
    return frozenset({n for st in stages for n in st.trains} - trained)


def _check_run(run: Path, checkpoint: Path, cfg: TrainConfig) -> None:
    """A checkpoint given with a run must be a model of that run's kind and data."""
    options = run / "training_options.json"
    if not options.is_file():
        return
    run_cfg = TrainConfig.load(options)
    if run_cfg.model != cfg.model:
        raise UserError(
            f"checkpoint {checkpoint.name} is a {cfg.model} model but run {run} trains "
            f"{run_cfg.model}"
        )
    same_root = (run_cfg.root and Path(run_cfg.root).resolve()) == (
        cfg.root and Path(cfg.root).resolve()
    )
    if run_cfg.dataset != cfg.dataset or not same_root:
        raise UserError(
            f"checkpoint {checkpoint} was trained on {cfg.dataset} at {cfg.root}, but run {run} "
            f"on {run_cfg.dataset} at {run_cfg.root}; give the checkpoint's own run or drop --run"
        )


def load_generator(
    run: str | os.PathLike | None = None,
    checkpoint: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    root: str | os.PathLike | None = None,
    optimizers: bool = False,
    raw: bool = False,
) -> Generator:
    """Load a trained generator from a run directory (its latest checkpoint) or a checkpoint.

    Args:
        run: a run directory; with ``checkpoint`` too, the checkpoint must be a model of the
            run's kind trained on the run's data.
        checkpoint: a checkpoint file (default: the run's latest).
        device: ``auto``, ``cpu``, ``cuda`` ... or a ``torch.device``.
        root: the dataset's root when it moved since training (default: the config's).
        optimizers: also restore the optimiser states (to inspect a training state).
        raw: keep the last weights of a run trained with ``--ema`` (default: their moving
            average, which training's own sample grids show).

    Returns:
        A :class:`Generator` in eval mode.

    Example:
        >>> g = load_generator("runs/00000-pg2-market1501")  # doctest: +SKIP
        >>> g.recipe.final(condition, pose, source_kps, target_kps).shape  # doctest: +SKIP
        torch.Size([16, 3, 128, 64])
    """
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    if checkpoint is None:
        if run is None:
            raise UserError("give --run RUN_DIR or --checkpoint FILE")
        if not Path(run).is_dir():
            raise UserError(f"run directory not found: {run}")
        checkpoint = ckpt_io.latest(run)
        if checkpoint is None:
            raise UserError(f"no checkpoint in {Path(run) / 'checkpoints'}")
    checkpoint = Path(checkpoint)
    state = ckpt_io.load(checkpoint, map_location=dev)
    cfg = TrainConfig.from_dict(state["config"])
    if run is not None and checkpoint.resolve().parent.parent != Path(run).resolve():
        _check_run(Path(run), checkpoint, cfg)
    if root is not None:
        cfg = dataclasses.replace(cfg, root=str(Path(root).expanduser().resolve()))
    recipe = build_recipe(cfg, dev)
    recipe.load_state_dict(state, optimizers=optimizers)
    recipe.eval_mode()
    averaged = () if raw else tuple(recipe.use_averaged())
    return Generator(
        recipe=recipe,
        config=cfg,
        stored_config=state["config"],
        checkpoint=checkpoint,
        sha256=file_sha256(checkpoint),
        run=Path(run) if run is not None else checkpoint.parent.parent,
        step=int(state.get("global_step", 0)),
        untrained=_untrained(recipe, state),
        averaged=averaged,
    )
