"""The training loop shared by every model. No click or rich here: progress goes to a callback."""

from __future__ import annotations

import dataclasses
import math
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from reidaug.config import CHANGEABLE, TrainConfig
from reidaug.data import build_dataset
from reidaug.data.pairs import PairDataset, train_pairs
from reidaug.device import environment, launch, resolve_device, seed_everything
from reidaug.errors import Interrupted, UserError
from reidaug.lock import folder_lock
from reidaug.progress import ProgressFn
from reidaug.reidnet.identity import identity_checkpoint, load_identity
from reidaug.training import checkpoint as ckpt_io
from reidaug.training import distributed as dist
from reidaug.training import rundir
from reidaug.training.recipe import Recipe, Stage, build_recipe, check_weights
from reidaug.weights import file_sha256

#: Fields that say where or how a run is kept, not what it computes: not compared on resume.
_NOT_COMPARED = ("out", "changes", "train_digest")


class StepSampler(Sampler[list[int]]):
    """Yields the batches of steps ``start .. stop-1`` of one stage.

    Batch ``k`` depends only on ``(seed, stage, k)``: a resumed run sees exactly the batches an
    uninterrupted one would. Each epoch is a fresh permutation of the (flip-doubled) index space.
    Under ``torchrun`` each rank takes its slice of the global batch.
    """

    def __init__(self, n: int, batch: int, seed: int, stage: int, start: int, stop: int) -> None:
        self.n, self.batch, self.seed, self.stage, self.start, self.stop = (
            n,
            batch,
            seed,
            stage,
            start,
            stop,
        )
        self.rank, self.world = dist.rank(), dist.world_size()
        if batch % self.world:
            raise UserError(f"--batch-size {batch} is not divisible by the {self.world} processes")
        self._perm: tuple[int, np.ndarray] | None = None

    def _epoch(self, e: int) -> np.ndarray:
        if self._perm is None or self._perm[0] != e:
            self._perm = (e, np.random.default_rng([self.seed, self.stage, e]).permutation(self.n))
        return self._perm[1]

    def global_batch(self, k: int) -> list[int]:
        first = k * self.batch
        return [int(self._epoch(j // self.n)[j % self.n]) for j in range(first, first + self.batch)]

    def __iter__(self) -> Iterator[list[int]]:
        for k in range(self.start, self.stop):
            yield self.global_batch(k)[self.rank :: self.world]

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


def loader_workers(workers: int | None, device: torch.device) -> int:
    """The data loader processes of a run: ``workers``, or when ``None`` 0 on a CPU device
    (the compute threads use every core; a loader process only competes with them) and 1 on
    CUDA (``benchmarks/train_step.py --compare-workers 0,1`` measures the two)."""
    if workers is not None:
        return workers
    return 0 if device.type == "cpu" else 1


def lr_factor(
    step: int, total: int, decay: float, elapsed: float = 0.0, budget: float | None = None
) -> float:
    """The learning rate's multiplier before step ``step`` (0-based) of a stage of ``total``:
    1 until the last ``decay`` fraction of the steps, then falling linearly to ``1 / n`` at the
    last step of those ``n`` (pix2pix's schedule); always 1 when ``decay`` is 0.

    With a time budget (``budget`` seconds, of which ``elapsed`` are spent) the rate also falls
    linearly to zero over the budget's last ``decay`` fraction; the lower multiplier holds, so a
    run stopped by ``--minutes`` ends annealed however many steps the machine managed.
    """
    if decay <= 0:
        return 1.0
    f = min(1.0, (total - step) / (decay * total))
    if budget is not None:
        f = min(f, max(0.0, (budget - elapsed) / (decay * budget)))
    return f


def _expected_total(
    done: int, total: int, it_s: float, elapsed: float, budget: float | None
) -> int:
    """``total``, or the steps done by the end of a time budget at ``it_s`` if fewer."""
    if budget is None:
        return total
    return min(total, done + max(0, int(it_s * (budget - elapsed))))


def _identity(
    cfg: TrainConfig, ds, device: torch.device, progress: ProgressFn | None, log: Callable
) -> tuple[TrainConfig, torch.nn.Module]:
    """The run's frozen identity network: ``cfg.id_checkpoint``, else the ``cpu``-recipe re-ID
    model of the dataset from the user cache (trained there once, with progress as stage
    ``identity network``). The options record the file and its digest."""
    t0 = time.time()

    def report(done: int, total: int, label: str | None = None, **stats) -> None:
        if progress:
            rate = done / max(time.time() - t0, 1e-9)
            progress(done, total, "identity network", **stats, it_s=rate)

    path = identity_checkpoint(cfg.dataset, str(ds.root), cfg.id_checkpoint, device, report, log)
    cfg = dataclasses.replace(cfg, id_checkpoint=str(path), id_checkpoint_sha256=file_sha256(path))
    return cfg, load_identity(path, ds.name, ds.num_train_ids, device)


def resume_options(
    run: str | Path, cfg: TrainConfig | None = None, changes: dict | None = None
) -> tuple[TrainConfig, dict[str, tuple]]:
    """The saved options of ``run`` with the wanted changes, and those changes as
    ``{option: (old, new)}``: the one place where a resume's options are merged.

    Args:
        cfg: the whole wanted config (every field that differs from the saved one is a change).
        changes: or only the options to change, by name (what the CLI's given flags are).

    An option outside :data:`~reidaug.config.CHANGEABLE` that differs is a ``UserError``.
    """
    run = Path(run)
    if not (run / "training_options.json").is_file():
        raise UserError(f"not a run directory (no training_options.json): {run}")
    saved = TrainConfig.load(run / "training_options.json")
    if cfg is not None and changes:
        raise TypeError("give the wanted config or the changes, not both")
    if cfg is None:
        unknown = sorted(set(changes or {}) - {f.name for f in dataclasses.fields(TrainConfig)})
        if unknown:
            raise UserError(f"unknown training options: {', '.join(unknown)}")
        cfg = dataclasses.replace(saved, **(changes or {}))
    new = cfg
    if new.root is not None:
        new = dataclasses.replace(new, root=str(Path(new.root).expanduser().resolve()))
    changed = {
        f.name: (getattr(saved, f.name), getattr(new, f.name))
        for f in dataclasses.fields(TrainConfig)
        if f.name not in _NOT_COMPARED and getattr(saved, f.name) != getattr(new, f.name)
    }
    fixed = [k for k in changed if k not in CHANGEABLE]
    if fixed:
        k = fixed[0]
        raise UserError(
            f"--{k.replace('_', '-')} cannot change when a run is resumed ({run} has "
            f"{k} = {changed[k][0]!r}, asked for {changed[k][1]!r}); start a new run instead"
        )
    return dataclasses.replace(saved, **{k: v for k, (_, v) in changed.items()}), changed


def _available_bytes() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` (Linux), else ``None``."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _check_memory(data: PairDataset, cfg: TrainConfig) -> None:
    """Refuse a batch whose input tensors alone (a worker's batch, its collated copy and the
    batch in the main process) cannot fit in the memory available: the kernel would kill the
    run without a message."""
    avail = _available_bytes()
    if avail is None:
        return
    h, w = data.height, data.width
    planes = 3 + 3 + 18 + 1 + (18 if data.spec.source_pose else 0)  # images, heatmaps, mask
    item = planes * h * w * 4  # float32, computed without reading an image
    need = 3 * cfg.batch_size * item
    if need > avail:
        raise UserError(
            f"--batch-size {cfg.batch_size} needs at least {need / 2**30:.1f} GiB for its "
            f"input tensors alone; {avail / 2**30:.1f} GiB are available (a lower bound: the "
            "networks' activations come on top)"
        )


def _select(stages: list[Stage], which: str) -> list[int]:
    if which == "all":
        return list(range(len(stages)))
    i = int(which) - 1
    if i >= len(stages):
        raise UserError(
            f"--stage {which} does not exist for this variant (it has {len(stages)} stage)"
        )
    return [i]


def _sample_batch(ds, cfg: TrainConfig, n: int = 8) -> dict[str, torch.Tensor] | None:
    """A fixed batch of held-out test pairs for the sample grids."""
    ann, seen, pairs = ds.annotations("gallery"), set(), []
    for a, b in ds.test_pairs():  # one pair per identity, for a varied grid
        if b in ann and a[:4] not in seen and len(pairs) < n:
            seen.add(a[:4])
            pairs.append((a, b))
    if not pairs:
        return None
    test = PairDataset(ds, pairs, "gallery", heatmap=cfg.heatmap)
    items = [test[i] for i in range(len(pairs))]
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def train(
    cfg: TrainConfig | None = None,
    resume: str | Path | None = None,
    progress: ProgressFn | None = None,
    log: Callable[[str], None] | None = None,
    identity: torch.nn.Module | None = None,
    changes: dict | None = None,
) -> Path:
    """Train a model and return its run directory.

    Args:
        cfg: the run's options (``TrainConfig``). With ``resume``, the run's saved options
            with the wanted changes: options in :data:`~reidaug.config.CHANGEABLE` may differ
            (each change is recorded with its step in ``training_options.json``), any other
            difference is a ``UserError``; ``out`` is not compared.
        resume: a run directory to continue from its latest checkpoint.
        changes: with ``resume`` and no ``cfg``, only the options to change, by name.
        progress: called as ``progress(done, total, stage=, loss=, it_s=)`` after each step;
            with a time budget, ``total`` is the steps expected when it ends at the current
            speed, if fewer than the iterations asked for.
        log: called with one-line messages (run directory, checkpoints, stage changes).
        identity: the frozen identity loss (``identity(fake, target)``) of a run with
            ``lambda_id > 0``; by default built from ``cfg.id_checkpoint`` or the user cache
            (see :mod:`reidaug.reidnet.identity`).

    Returns:
        The run directory ``RUNS/NNNNN-<model>-<dataset>``.

    Example:
        >>> from reidaug.data import make_synthetic
        >>> _ = make_synthetic("data/synthetic", ids=8)  # doctest: +SKIP
        >>> cfg = TrainConfig(dataset="synthetic", root="data/synthetic", width=16, iters1=200,
        ...                   iters2=100, batch_size=8, out="runs")
        >>> run = train(cfg)  # doctest: +SKIP
        >>> sorted(p.name for p in run.iterdir())  # doctest: +SKIP
        ['checkpoints', 'curves.png', 'samples', 'stats.jsonl', 'training_options.json']
    """
    log = log or (lambda msg: None)
    if resume is not None and launch().rank == 0:  # one resume of a run at a time
        with folder_lock(Path(resume), "train"):
            return _train(cfg, resume, progress, log, identity, changes)
    return _train(cfg, resume, progress, log, identity, changes)


def _train(cfg, resume, progress, log, identity, changes) -> Path:
    changed: dict[str, tuple] = {}
    if resume is not None:
        run = Path(resume)
        cfg, changed = resume_options(run, cfg, changes)
    elif cfg is None:
        raise TypeError("train() needs a TrainConfig, or resume=RUN_DIR")
    device = dist.init_from_env(resolve_device(cfg.device))
    check_weights(cfg)
    seed_everything(cfg.seed)

    ds = build_dataset(cfg.dataset, cfg.root, cfg.annotations)
    ds.check_before_run()
    ds.restrict_train(cfg.real_per_id, cfg.id_fraction, cfg.subset_seed)
    ds.require_pairs()
    if resume is not None:
        _check_same_dataset(run, cfg, ds)
    pairs = train_pairs(ds.train, ds.annotations("train"))
    data = PairDataset(ds, pairs, "train", heatmap=cfg.heatmap, flip=cfg.flip)
    _check_memory(data, cfg)
    if cfg.lambda_id > 0 and identity is None:
        cfg, identity = _identity(cfg, ds, device, progress, log)
    recipe = build_recipe(cfg, device, identity)
    stages = recipe.stages()
    selected = _select(stages, cfg.stage)
    if resume is not None:
        cfg, pos = _restore(run, cfg, changed, recipe, selected, device, log)
    else:
        cfg, run = _create(cfg, ds, selected, log)
        pos = (0, 0)  # (stage index, steps done in it)
    if launch().rank == 0:  # where each start or resume of the run ran (CPU runs differ by machine)
        rundir.append_jsonl(
            run / "environment.jsonl", {"stage": pos[0], "step": pos[1], **environment(device)}
        )
    return _run_stages(cfg, run, recipe, selected, data, ds, pos, device, resume, progress, log)


def _check_same_dataset(run: Path, cfg: TrainConfig, ds) -> None:
    """Refuse a dataset (a moved ``--root``, say) whose training split is not the run's."""
    if cfg.train_digest is not None and ds.train_digest() != cfg.train_digest:
        raise UserError(
            f"{ds.root} holds another training set than {run} was trained on "
            f"({len(ds.train)} images of {ds.num_train_ids} ids now); pass the run's dataset"
        )


def _restore(run, cfg, changed, recipe, selected, device, log) -> tuple[TrainConfig, tuple]:
    """Load the newest readable checkpoint of ``run`` into ``recipe``; record the option
    changes; return the config and the ``(stage index, steps done)`` to go on from."""
    stages = recipe.stages()
    last, state = None, None
    for path in sorted((run / "checkpoints").glob("step-*.pt"), reverse=True):
        try:  # a truncated newest checkpoint (a kill mid-copy, a full disk) gives way
            state, last = ckpt_io.load(path, map_location=device), path
            break
        except UserError as e:
            log(f"skipping {path.name}: {e}")
    if state is None:
        raise UserError(f"run {run} has no readable checkpoint to resume from")
    pos = (state["stage_index"], state["stage_step"])
    _check_stage_lengths(run, stages, changed, pos)
    recipe.load_state_dict(state)
    dropped, torn = rundir.keep_stats_until(run, state["global_step"])
    if torn:
        log(f"{run / 'stats.jsonl'}: skipped {torn} torn line(s) left by an interrupted write")
    if dropped:  # they are logged again when those steps are redone
        log(f"dropped {dropped} stats row(s) logged after {last.name}")
    if changed and dist.is_main():
        cfg = _record_changes(run, cfg, changed, state["global_step"], log)
    ckpt_io.set_rng_state(state["rng"])
    unfinished = pos[1] < stages[pos[0]].iters
    if selected[0] > pos[0] and unfinished:
        raise UserError(
            f"--stage {cfg.stage}: stage {stages[pos[0]].name} of {run} is not finished "
            f"(step {pos[1]} of {stages[pos[0]].iters}); resume it with --stage "
            f"{stages[pos[0]].name} first"
        )
    log(f"resuming {run} from {last.name} (stage {stages[pos[0]].name}, step {pos[1]})")
    return cfg, pos


def _check_stage_lengths(run: Path, stages: list[Stage], changed: dict, pos: tuple) -> None:
    """A stage's length may change until the next stage starts, not after: the global step
    numbers of every later stage (and so its checkpoints) hang on it. A stage whose next one
    has not started may grow (training goes on from where it stopped), never below its steps."""
    for i, st in enumerate(stages):
        key = f"iters{i + 1}"
        if key not in changed:
            continue
        flag = f"--{key}"
        if i < pos[0]:
            raise UserError(
                f"{flag} cannot change: stage {st.name} of {run} is finished and stage "
                f"{stages[pos[0]].name} has started from it ({changed[key][0]} iterations); "
                "start a new run for another length"
            )
        if i == pos[0] and st.iters < pos[1]:
            raise UserError(
                f"{flag} {st.iters} is below the {pos[1]} steps stage {st.name} of {run} has done"
            )


def _create(cfg: TrainConfig, ds, selected: list[int], log) -> tuple[TrainConfig, Path]:
    """A new numbered run directory with the options (paths resolved, the data's digest)."""
    if selected[0] > 0:
        raise UserError(
            f"--stage {cfg.stage} needs a trained stage 1: pass --resume RUN_DIR of such a run"
        )
    # stored resolved, so the run resumes and synthesizes from any working directory
    annotations = str(Path(cfg.annotations).expanduser().resolve()) if cfg.annotations else None
    cfg = dataclasses.replace(
        cfg,
        root=str(Path(ds.root).resolve()),
        annotations=annotations,
        train_digest=ds.train_digest(),
    )
    run = rundir.create(cfg.out, cfg) if dist.is_main() else Path(cfg.out)
    log(f"run directory: {run}")
    return cfg, run


def _run_stages(cfg, run, recipe, selected, data, ds, pos, device, resume, progress, log) -> Path:
    """Train the selected stages from ``pos``: the step loop, stats, samples, checkpoints."""
    stages = recipe.stages()
    offsets = np.cumsum([0] + [s.iters for s in stages]).tolist()
    engine = _Engine(cfg, recipe, run, offsets, device, log)
    total = sum(stages[i].iters for i in selected)
    done_before = sum(
        min(stages[i].iters, pos[1]) if i == pos[0] else (stages[i].iters if i < pos[0] else 0)
        for i in selected
    )
    workers = loader_workers(cfg.workers, device)
    t_start = time.time()
    clock = 0.0  # seconds of this invocation's budget spent (the ranks' mean)
    done = done_before
    try:
        samples = _sample_batch(ds, cfg) if dist.is_main() else None
        for si in selected:
            st = stages[si]
            start = pos[1] if si == pos[0] else (st.iters if si < pos[0] else 0)
            if start >= st.iters:
                continue
            recipe.train_mode(st)
            log(
                f"stage {st.name}: training {', '.join(st.trains)} for {st.iters - start} "
                "iterations"
            )
            sampler = StepSampler(len(data), cfg.batch_size, cfg.seed, si, start, st.iters)
            loader = DataLoader(
                data,
                batch_sampler=sampler,
                num_workers=workers,
                pin_memory=device.type == "cuda",
                prefetch_factor=4 if workers else None,
                persistent_workers=False,
            )
            t0 = time.time()
            for k, batch in enumerate(loader, start=start):
                batch = {key: v.to(device, non_blocking=True) for key, v in batch.items()}
                # set every step from the options, so a resume's --lr or --lr-decay replaces
                # the rate its optimisers saved; a --minutes budget is this invocation's, on
                # the clock every rank agreed after the last step
                recipe.set_lr(
                    recipe.opt("lr") * lr_factor(k, st.iters, cfg.lr_decay, clock, cfg.max_seconds)
                )
                losses = recipe.step(st.name, batch)
                step = k + 1
                done += 1
                losses, clock = engine.sync(losses, time.time() - t_start)
                over = cfg.max_seconds is not None and clock > cfg.max_seconds
                it_s = (step - start) / max(time.time() - t0, 1e-9)
                engine.after_step(si, step, losses, it_s, samples)
                if progress:
                    main = next(iter(losses.values()))
                    progress(
                        done,
                        _expected_total(done, total, it_s, clock, cfg.max_seconds),
                        f"stage {st.name}",
                        loss=main,
                        it_s=it_s,
                    )
                if over or step == st.iters:
                    engine.checkpoint(si, step)
                    if over:
                        log(
                            f"time budget of {cfg.max_seconds:.0f} s reached at stage {st.name} "
                            f"step {step}"
                        )
                        engine.finish(samples, si, step)
                        return run
    except BaseException as e:
        if resume is None and dist.is_main():
            _discard_if_empty(run, log)
        if isinstance(e, KeyboardInterrupt) and dist.is_main() and engine.last_pos is not None:
            g = offsets[engine.last_pos[0]] + engine.last_pos[1]
            ck = ckpt_io.latest(run)
            kept = int(ck.stem.split("-")[1]) if ck else 0
            raise Interrupted(
                f"interrupted after step {g}; last checkpoint: {ck or 'none'}; "
                f"{g - kept} step(s) since it will be redone by: reidaug train --resume {run}"
            ) from None
        raise
    engine.finish(samples, *(engine.last_pos or (0, 0)))
    return run


def _record_changes(
    run: Path, cfg: TrainConfig, changed: dict[str, tuple], step: int, log: Callable[[str], None]
) -> TrainConfig:
    """Append ``changed`` with its step to the options and rewrite ``training_options.json``."""
    rows = [{"step": step, "option": k, "from": a, "to": b} for k, (a, b) in changed.items()]
    cfg = dataclasses.replace(cfg, changes=[*cfg.changes, *rows])
    rundir.write_options(run, cfg)
    for r in rows:
        log(f"{r['option']} changed from {r['from']!r} to {r['to']!r} at step {step}")
    return cfg


def _discard_if_empty(run: Path, log: Callable[[str], None]) -> None:
    """Remove a new run directory that failed before logging or saving anything (it would hold
    only ``training_options.json``)."""
    if not (run / "stats.jsonl").exists() and ckpt_io.latest(run) is None:
        shutil.rmtree(run, ignore_errors=True)
        log(f"removed {run}: the run failed before its first step")


class _Engine:
    """Stats, samples and checkpoints for one run (rank 0 writes, other ranks only compute)."""

    def __init__(self, cfg, recipe: Recipe, run: Path, offsets, device, log) -> None:
        self.cfg, self.recipe, self.run, self.device, self.log = cfg, recipe, run, device, log
        self.offsets = offsets
        self.stages = recipe.stages()  # built once, not on every step
        self.last_ckpt: Path | None = ckpt_io.latest(run) if dist.is_main() else None
        self.last_pos: tuple[int, int] | None = None
        self.window: dict[str, list[float]] = {}

    def sync(self, losses: dict[str, float], clock: float) -> tuple[dict[str, float], float]:
        """Average losses and the budget clock across ranks (so every rank decays its rate and
        stops alike), and stop on a non-finite loss."""
        if dist.world_size() > 1:
            *vals, clock = dist.all_reduce_mean([*losses.values(), clock])
            losses = dict(zip(losses, vals, strict=True))
        bad = [k for k, v in losses.items() if not math.isfinite(v)]
        if bad:
            self.stop(f"{bad[0]} became {losses[bad[0]]}")
        return losses, clock

    def stop(self, what: str) -> None:
        """Stop on divergence, naming the newest checkpoint that is safe to resume from."""
        where = ckpt_io.newest_sane(self.run) if dist.is_main() else None
        if where is None:
            raise UserError(
                f"{what}: training stopped; no checkpoint of {self.run} is safe to resume from "
                "(none was written, or its weights had already diverged): start a new run "
                "with a lower --lr"
            )
        raise UserError(
            f"{what}: training stopped; last good checkpoint: {where} (resume it with a lower --lr)"
        )

    def after_step(
        self, si: int, step: int, losses: dict[str, float], it_s: float, samples
    ) -> None:
        self.last_pos = (si, step)
        for k, v in losses.items():
            self.window.setdefault(k, []).append(v)
        cfg, g = self.cfg, self.offsets[si] + step
        if not dist.is_main():
            return
        if step % cfg.log_every == 0 or step == self.stages[si].iters:
            rundir.append_stats(
                self.run,
                {
                    "stage": self.stages[si].name,
                    "stage_step": step,
                    "global_step": g,
                    "losses": losses,
                    "window_mean": {k: float(np.mean(v)) for k, v in self.window.items()},
                    "it_s": round(it_s, 3),
                    "lr": self.recipe.get_lr(self.stages[si].trains),
                },
            )
            self.window = {}
        if samples is not None and step % cfg.sample_every == 0:
            self.sample(samples, g)
        if step % cfg.checkpoint_every == 0:
            self.checkpoint(si, step)

    def sample(self, batch: dict[str, torch.Tensor], global_step: int) -> None:
        cond = batch["condition"].to(self.device)
        pose = batch["target_pose"].to(self.device)
        kps = [batch[k].to(self.device) for k in ("source_keypoints", "target_keypoints")]
        with self.recipe.evaluating():
            outs = self.recipe.generate(cond, pose, *kps)
        cols = [
            cond,
            rundir.pose_image(pose),
            *[o.clamp(-1, 1) for o in outs.values()],
            batch["target"],
        ]
        rundir.save_grid(
            self.run / "samples" / f"step-{global_step:07d}.png", [c.cpu() for c in cols]
        )
        rundir.plot_curves(self.run)

    def checkpoint(self, si: int, step: int) -> None:
        if not dist.is_main():
            return
        g = self.offsets[si] + step
        path = self.run / "checkpoints" / f"step-{g:07d}.pt"
        if self.last_ckpt == path:
            return
        state = self.recipe.state_dict()
        if not ckpt_io.finite(state["nets"]):  # never write (and keep) poisoned weights
            self.stop(f"the weights became non-finite at step {g}")
        if not ckpt_io.sane(state["nets"]):
            self.stop(f"the weights grew past {ckpt_io.SANE_WEIGHT:g} at step {g}")
        payload = {
            **state,
            "stage_index": si,
            "stage_step": step,
            "global_step": g,
            "model": self.cfg.model,
            "config": dataclasses.asdict(self.cfg),
            "rng": ckpt_io.rng_state(),
        }
        ckpt_io.save(path, payload)
        self.last_ckpt = path
        self.log(f"checkpoint: {path}")
        self._prune(si)

    def _prune(self, si: int) -> None:
        """Keep the newest ``keep_checkpoints`` files and the final one of every finished stage."""
        stage_ends = {self.offsets[i + 1] for i in range(len(self.offsets) - 1)}
        files = sorted((self.run / "checkpoints").glob("step-*.pt"))
        for f in files[: -self.cfg.keep_checkpoints]:
            if int(f.stem.split("-")[1]) not in stage_ends:
                f.unlink()

    def finish(self, samples, si: int, step: int) -> None:
        if dist.is_main() and samples is not None:
            self.sample(samples, self.offsets[si] + step)
