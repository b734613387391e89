"""``synthesize``: every training image of a run's dataset in ``poses`` new poses, into HDF5 shards.

The job is a fixed list: image ``i = s * poses + k`` is source ``s`` (training images in sorted
order) in its ``k``-th target pose. Shard ``j`` holds images ``j * shard_size ..``. A process
with ``--num-shards N --shard-index I`` (or rank ``I`` of ``N`` under ``torchrun``) writes the
shards ``j`` with ``j % N == I``. Every shard is generated in the same batches whether or not a
run was interrupted, so the same seed and checkpoint give byte-identical shards.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from reidaug import __version__
from reidaug.config import SynthesisConfig, TrainConfig
from reidaug.data import build_dataset
from reidaug.data.keypoints import MISSING, NUM_KEYPOINTS
from reidaug.data.market1501 import Market1501
from reidaug.data.pairs import load_image, to_tensor, to_uint8
from reidaug.data.parts import warp_images
from reidaug.data.pose import render_heatmaps
from reidaug.device import launch, resolve_device
from reidaug.errors import UserError
from reidaug.lock import folder_lock
from reidaug.synthesis.poses import PoseBank, PoseSampler
from reidaug.synthesis.shards import (
    file_sha256,
    read_manifest,
    shard_name,
    write_manifest,
    write_shard,
)
from reidaug.training.load import load_generator

#: Manifest fields that identify a job; a folder holding another job's shards is refused.
JOB_KEYS = (
    "model",
    "checkpoint_sha256",
    "dataset",
    "poses",
    "strategy",
    "seed",
    "shard_size",
    "sources",
    "people",
)


class _Jobs(Dataset):
    """Model inputs of job ``i``: source image ``i // poses``, its target pose's heatmaps (none
    for the warp) and both poses' keypoints (a source without an annotation has all keypoints
    missing)."""

    def __init__(
        self, ds: Market1501, sources, bank: PoseBank, targets: np.ndarray, heatmap: str | None
    ) -> None:
        self.ds, self.sources, self.bank, self.targets = ds, sources, bank, targets
        self.heatmap = heatmap
        self.annotations = ds.annotations("train")

    def __len__(self) -> int:
        return self.targets.size

    def __getitem__(self, idx: int) -> dict:
        s, k = divmod(idx, self.targets.shape[1])
        donor = int(self.targets[s, k])
        img = load_image(self.sources[s].path, self.ds.height, self.ds.width)
        target = self.bank.keypoints[donor]
        hm = (
            render_heatmaps(target, self.ds.height, self.ds.width, self.heatmap)
            if self.heatmap
            else np.zeros(0, np.float32)
        )
        missing = np.full((NUM_KEYPOINTS, 2), MISSING)
        source_kps = self.annotations.get(self.sources[s].name, missing)
        return {
            "condition": to_tensor(img),
            "pose": torch.from_numpy(hm),
            "source_keypoints": torch.from_numpy(source_kps.astype(np.float32)),
            "target_keypoints": torch.from_numpy(target.astype(np.float32)),
            "index": idx,
        }


def _shard_job(path: Path) -> dict | None:
    """The job a shard file was written for (from its ``config`` attribute), or None."""
    try:
        with h5py.File(path, "r") as f:
            return json.loads(f.attrs["config"])["job"]
    except (OSError, KeyError, ValueError, TypeError):
        return None


def _rank_defaults(num_shards: int | None, shard_index: int | None) -> tuple[int, int]:
    env = launch()
    if num_shards is None and env.distributed:
        return env.world_size, env.rank
    n, i = num_shards or 1, shard_index or 0
    if not 0 <= i < n:
        raise UserError(f"--shard-index {i} must be in 0..{n - 1}")
    return n, i


@dataclass(frozen=True)
class _Drawer:
    """What turns a batch of :class:`_Jobs` into images, and what the shards say about it."""

    model: str  # the generator's kind, or "warp"
    sha256: str | None  # the checkpoint's, None for the warp
    training: dict | None  # the generator's training options as stored, None for the warp
    config: TrainConfig | None
    draw: Callable[[dict], np.ndarray]  # batch -> uint8 (B, H, W, 3)
    cuda: bool = False  # pin the loader's memory for a GPU

    @property
    def heatmap(self) -> str | None:
        return self.config.heatmap if self.config else None


def _drawer(params: SynthesisConfig) -> _Drawer:
    """The run's generator on ``params.device``, or the training-free part warp."""
    if params.source == "warp":

        def warp(batch: dict) -> np.ndarray:
            kps = [batch[k].numpy().astype(np.int64) for k in _KEYPOINTS]
            return warp_images(to_uint8(batch["condition"]), *kps)

        return _Drawer(model="warp", sha256=None, training=None, config=None, draw=warp)
    dev = launch().device(resolve_device(params.device))  # one GPU per torchrun rank
    root = None if params.dataset is not None else params.root
    gen = load_generator(params.run, params.checkpoint, dev, root)

    def generate(batch: dict) -> np.ndarray:
        with torch.no_grad():
            inputs = (batch[k].to(dev) for k in ("condition", "pose", *_KEYPOINTS))
            return to_uint8(gen.recipe.final(*inputs))

    config, stored = gen.config, gen.stored_config
    return _Drawer(
        model=config.model,
        sha256=gen.sha256,
        training=stored,
        config=config,
        draw=generate,
        cuda=dev.type == "cuda",
    )


_KEYPOINTS = ("source_keypoints", "target_keypoints")


def _people(params: SynthesisConfig, drawer: _Drawer) -> tuple[Market1501, dict | None]:
    """The dataset whose training images are drawn, restricted to its subset, and (when they
    are not the generator's own training set) what identifies them."""
    if params.dataset is None:  # the run's own people and training subset
        cfg = drawer.config
        assert cfg is not None
        ds = build_dataset(cfg.dataset, params.root or cfg.root, cfg.annotations)
        ds.check_before_run()
        ds.restrict_train(cfg.real_per_id, cfg.id_fraction, cfg.subset_seed)
        return ds, None
    ds = build_dataset(params.dataset, params.root)
    ds.check_before_run()
    people = {"dataset": ds.name, "train_sha256": ds.train_digest()}
    ds.restrict_train(params.real_per_id, None, params.subset_seed)
    return ds, {**people, "subset": ds.subset}


def _check_folder(out: Path, job: dict, log: Callable[[str], None]) -> dict[str, str]:
    """Refuse a folder holding another job's manifest or shards (nothing is touched); returns
    the manifest's ``{file: sha256}`` of finished shards."""
    old = read_manifest(out)
    listed = {s["file"] for s in old.get("shards", [])}
    if old:
        diff = [k for k in JOB_KEYS if old.get(k) != job[k]]
        if diff:
            raise UserError(
                f"{out} holds shards of a different job ({diff[0]}: {old.get(diff[0])} != "
                f"{job[diff[0]]})"
            )
    for p in sorted(out.glob("shard-*.h5")):  # each shard carries its job: never touch another's
        theirs = _shard_job(p)
        if theirs is None and p.name in listed:
            log(f"{p.name} is unreadable (truncated?); it is written again")
            continue  # one of this job's own shards, damaged after it was written
        if theirs is None:
            raise UserError(
                f"{p} is not a readable reidaug shard; move it away or pick another --out"
            )
        diff = [k for k in JOB_KEYS if theirs.get(k) != job[k]]
        if diff:
            raise UserError(
                f"{out} holds shards of a different job ({p.name}: {diff[0]} "
                f"{theirs.get(diff[0])} != {job[diff[0]]}); nothing was changed"
            )
    return {s["file"]: s["sha256"] for s in old.get("shards", [])}


def _unfinished(out: Path, mine: list[int], known: dict[str, str]) -> tuple[list[int], int]:
    """This process's shards still to write, and how many finished ones were verified."""
    todo, skipped = [], 0
    for j in mine:
        p = out / shard_name(j)
        if p.is_file() and known.get(p.name) == file_sha256(p):
            skipped += 1
        else:
            p.unlink(missing_ok=True)  # unverifiable: written by a run killed before its manifest
            todo.append(j)
    return todo, skipped


def _created() -> str:
    created = os.environ.get("SOURCE_DATE_EPOCH")
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(created) if created else None))


def _records(
    params: SynthesisConfig, drawer: _Drawer, ds: Market1501, people: dict | None, total: int
) -> tuple[dict, dict]:
    """The job (what the manifest and every shard compare) and the shards' attributes."""
    sources = ds.train
    job = {
        "reidaug_version": __version__,
        "model": drawer.model,
        "checkpoint_sha256": drawer.sha256,
        "dataset": ds.name,
        "poses": params.poses,
        "strategy": params.strategy,
        "seed": params.seed,
        "shard_size": params.shard_size,
        "sources": len(sources),
        "images": total,
        "subset": ds.subset,
        "people": people,
    }
    attrs = {
        "reidaug_version": __version__,
        "model": drawer.model,
        "checkpoint_sha256": drawer.sha256 or "",
        "config": json.dumps({"job": job, "training": drawer.training}, sort_keys=True),
        "command": params.command,
        "created": _created(),
        "dataset": ds.name,
        "generator_dataset": drawer.config.dataset if drawer.config else "",
        "seed": params.seed,
    }
    return job, attrs


def synthesize(
    params: SynthesisConfig | str | os.PathLike,
    /,
    *,
    progress: Callable[..., None] | None = None,
    log: Callable[[str], None] | None = None,
    **fields,
) -> dict:
    """Generate ``poses`` images of every training image into ``out/shard-NNNNN.h5``.

    Args:
        params: a :class:`~reidaug.config.SynthesisConfig`, or the shard folder ``out`` with
            the config's other fields as keywords.
        progress: called as ``progress(done, total, images_s=)`` over this process's images.
        log: called with one line per step worth telling.

    Returns:
        A summary: images and shards written, skipped (already finished), and the manifest.

    Example:
        >>> synthesize("shards/", run="runs/00000-pg2-market1501", poses=10)  # doctest: +SKIP
    """
    if isinstance(params, SynthesisConfig):
        if fields:
            raise TypeError("give a SynthesisConfig or its fields as keywords, not both")
    else:
        params = SynthesisConfig(out=str(params), **fields)
    log = log or (lambda msg: None)
    n_proc, me = _rank_defaults(params.num_shards, params.shard_index)
    # the job's folder is locked once its generator and data are known to load, so a bad
    # --run makes no folder
    drawer = _drawer(params)
    ds, people = _people(params, drawer)
    sources = ds.train
    bank = PoseBank.from_annotations([it.name for it in sources], ds.annotations("train"))
    sampler = PoseSampler(bank, params.poses, params.strategy, params.seed)
    targets = np.array([sampler.sample(it.name, s) for s, it in enumerate(sources)], np.int64)
    total = len(sources) * params.poses
    total_shards = math.ceil(total / params.shard_size)
    job, attrs = _records(params, drawer, ds, people, total)
    out = Path(params.out)
    with folder_lock(out, f"synthesize-{me}-of-{n_proc}"):
        known = _check_folder(out, job, log)
        mine = [j for j in range(total_shards) if j % n_proc == me]
        todo, skipped = _unfinished(out, mine, known)
        if skipped:
            log(f"{skipped} finished shards verified and skipped")
        jobs = _Jobs(ds, sources, bank, targets, drawer.heatmap)
        done, seconds = _write(
            out, jobs, todo, params=params, draw=drawer.draw, cuda=drawer.cuda, job=job,
            attrs=attrs, progress=progress, log=log,
        )  # fmt: skip
        manifest = write_manifest(out, job, total_shards)
    return {
        "written_images": done,
        "written_shards": len(todo),
        "skipped_shards": skipped,
        "total_shards": total_shards,
        "complete": manifest["complete"],
        "out": str(out),
        "images_s": done / max(seconds, 1e-9),
    }


def _write(
    out: Path,
    jobs: _Jobs,
    todo: list[int],
    *,
    params: SynthesisConfig,
    draw: Callable[[dict], np.ndarray],
    cuda: bool,
    job: dict,
    attrs: dict,
    progress: Callable[..., None] | None,
    log: Callable[[str], None],
) -> tuple[int, float]:
    """Draw and write the shards ``todo``; returns the images written and the seconds taken."""
    shard_size, total, poses = params.shard_size, job["images"], params.poses
    sources, bank, targets = jobs.sources, jobs.bank, jobs.targets
    total_shards = math.ceil(total / shard_size)
    my_total = sum(min(shard_size, total - j * shard_size) for j in todo)
    done, t0 = 0, time.perf_counter()
    # One loader over all of this process's shards (no worker start-up per shard); batches never
    # cross a shard boundary, so every shard is generated in the same batches on every run.
    batches = [
        list(range(b, min(b + params.batch_size, (j + 1) * shard_size, total)))
        for j in todo
        for b in range(j * shard_size, min((j + 1) * shard_size, total), params.batch_size)
    ]
    loader = DataLoader(
        jobs,
        batch_sampler=batches,
        num_workers=params.workers if batches else 0,
        pin_memory=cuda,
    )
    images = None
    for batch in loader:
        idx = batch["index"].numpy()
        j = int(idx[0]) // shard_size
        lo, hi = j * shard_size, min(total, (j + 1) * shard_size)
        if images is None:
            images, filled = np.empty((hi - lo, jobs.ds.height, jobs.ds.width, 3), np.uint8), 0
        images[idx - lo] = draw(batch)
        filled += len(idx)
        done += len(idx)
        if progress:
            progress(done, my_total, images_s=done / max(time.perf_counter() - t0, 1e-9))
        if filled < hi - lo:
            continue
        s_idx = np.arange(lo, hi) // poses
        donors = targets[s_idx, np.arange(lo, hi) % poses]
        write_shard(
            out / shard_name(j),
            {
                "images": images,
                "pid": [sources[s].raw_pid for s in s_idx],
                "label": [sources[s].pid for s in s_idx],
                "camid": [sources[s].camid for s in s_idx],
                "index": np.arange(lo, hi),
                "source_name": [sources[s].name for s in s_idx],
                "target_name": [bank.names[d] for d in donors],
                "target_keypoints": bank.keypoints[donors],
            },
            {**attrs, "shard_index": j},
        )
        write_manifest(out, job, total_shards, fresh=(shard_name(j),))
        log(f"wrote {shard_name(j)} ({hi - lo} images)")
        images = None
    return done, time.perf_counter() - t0
