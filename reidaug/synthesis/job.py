"""``synthesize``: every training image of a run's dataset in ``poses`` new poses, into HDF5 shards.

The job is a fixed list: image ``i = s * poses + k`` is source ``s`` (training images in sorted
order) in its ``k``-th target pose. Shard ``j`` holds images ``j * shard_size ..``. A process
with ``--num-shards N --shard-index I`` (or rank ``I`` of ``N`` under ``torchrun``) writes the
shards ``j`` with ``j % N == I``. Every shard is generated in the same batches whether or not a
run was interrupted, so the same seed and checkpoint give byte-identical shards.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from reidaug import __version__
from reidaug.config import SynthesisConfig
from reidaug.data import build_dataset
from reidaug.data.keypoints import MISSING, NUM_KEYPOINTS
from reidaug.data.market1501 import Market1501
from reidaug.data.pairs import load_image, to_tensor, to_uint8
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
    """Model inputs of job ``i``: source image ``i // poses``, its target pose's heatmaps and
    both poses' keypoints (a source without an annotation has all keypoints missing)."""

    def __init__(
        self, ds: Market1501, sources, bank: PoseBank, targets: np.ndarray, heatmap: str
    ) -> None:
        self.ds, self.sources, self.bank, self.targets, self.heatmap = (
            ds,
            sources,
            bank,
            targets,
            heatmap,
        )
        self.annotations = ds.annotations("train")

    def __len__(self) -> int:
        return self.targets.size

    def __getitem__(self, idx: int) -> dict:
        s, k = divmod(idx, self.targets.shape[1])
        donor = int(self.targets[s, k])
        img = load_image(self.sources[s].path, self.ds.height, self.ds.width)
        hm = render_heatmaps(
            self.bank.keypoints[donor], self.ds.height, self.ds.width, self.heatmap
        )
        missing = np.full((NUM_KEYPOINTS, 2), MISSING)
        source_kps = self.annotations.get(self.sources[s].name, missing)
        return {
            "condition": to_tensor(img),
            "pose": torch.from_numpy(hm),
            "source_keypoints": torch.from_numpy(source_kps.astype(np.float32)),
            "target_keypoints": torch.from_numpy(self.bank.keypoints[donor].astype(np.float32)),
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
    with contextlib.ExitStack() as held:
        dev = launch().device(resolve_device(params.device))  # one GPU per torchrun rank
        cross = params.dataset is not None
        gen = load_generator(params.run, params.checkpoint, dev, None if cross else params.root)
        cfg = gen.config  # the training's options

        people = None
        if cross:  # another dataset's people, in the subset the user names
            ds = build_dataset(params.dataset, params.root)
            ds.check_before_run()
            people = {"dataset": ds.name, "train_sha256": ds.train_digest()}
            ds.restrict_train(params.real_per_id, None, params.subset_seed)
            people["subset"] = ds.subset
        else:
            ds = build_dataset(cfg.dataset, cfg.root, cfg.annotations)
            ds.check_before_run()
            ds.restrict_train(cfg.real_per_id, cfg.id_fraction, cfg.subset_seed)  # the run's own
        sources = ds.train
        bank = PoseBank.from_annotations([it.name for it in sources], ds.annotations("train"))
        sampler = PoseSampler(bank, params.poses, params.strategy, params.seed)
        targets = np.array(
            [sampler.sample(it.name, s) for s, it in enumerate(sources)], dtype=np.int64
        )

        total = len(sources) * params.poses
        total_shards = math.ceil(total / params.shard_size)
        mine = [j for j in range(total_shards) if j % n_proc == me]
        job = {
            "reidaug_version": __version__,
            "model": cfg.model,
            "checkpoint_sha256": gen.sha256,
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
        out = Path(params.out)
        held.enter_context(folder_lock(out, f"synthesize-{me}-of-{n_proc}"))
        shard_size, batch_size, workers = params.shard_size, params.batch_size, params.workers
        command, seed, poses, recipe = params.command, params.seed, params.poses, gen.recipe
        old = read_manifest(out)
        listed = {s["file"] for s in old.get("shards", [])}
        if old:
            diff = [k for k in JOB_KEYS if old.get(k) != job[k]]
            if diff:
                raise UserError(
                    f"{out} holds shards of a different job ({diff[0]}: {old.get(diff[0])} != "
                    f"{job[diff[0]]})"
                )
        for p in sorted(
            out.glob("shard-*.h5")
        ):  # each shard carries its job: never touch another's
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
                    f"{theirs.get(diff[0])} != "
                    f"{job[diff[0]]}); nothing was changed"
                )
        known = {s["file"]: s["sha256"] for s in old.get("shards", [])}
        created = os.environ.get("SOURCE_DATE_EPOCH")
        created = time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(created) if created else None)
        )
        attrs = {
            "reidaug_version": __version__,
            "model": cfg.model,
            "checkpoint_sha256": job["checkpoint_sha256"],
            "config": json.dumps({"job": job, "training": gen.stored_config}, sort_keys=True),
            "command": command,
            "created": created,
            "dataset": ds.name,
            "generator_dataset": cfg.dataset,
            "seed": seed,
        }
        todo, skipped = [], 0
        for j in mine:
            p = out / shard_name(j)
            if p.is_file() and known.get(p.name) == file_sha256(p):
                skipped += 1
            else:
                p.unlink(
                    missing_ok=True
                )  # unverifiable: written by a run killed before its manifest
                todo.append(j)
        if skipped:
            log(f"{skipped} finished shards verified and skipped")
        my_total = sum(min(shard_size, total - j * shard_size) for j in todo)
        done, t0 = 0, time.perf_counter()
        # One loader over all of this process's shards (no worker start-up per shard); batches never
        # cross a shard boundary, so every shard is generated in the same batches on every run.
        batches = [
            list(range(b, min(b + batch_size, (j + 1) * shard_size, total)))
            for j in todo
            for b in range(j * shard_size, min((j + 1) * shard_size, total), batch_size)
        ]
        loader = DataLoader(
            _Jobs(ds, sources, bank, targets, cfg.heatmap),
            batch_sampler=batches,
            num_workers=workers if batches else 0,
            pin_memory=dev.type == "cuda",
        )
        images = None
        for batch in loader:
            idx = batch["index"].numpy()
            j = int(idx[0]) // shard_size
            lo, hi = j * shard_size, min(total, (j + 1) * shard_size)
            if images is None:
                images, filled = np.empty((hi - lo, ds.height, ds.width, 3), dtype=np.uint8), 0
            with torch.no_grad():
                img = recipe.final(
                    *(
                        batch[k].to(dev)
                        for k in ("condition", "pose", "source_keypoints", "target_keypoints")
                    )
                )
            images[idx - lo] = to_uint8(img)
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
        manifest = write_manifest(out, job, total_shards)
        return {
            "written_images": done,
            "written_shards": len(todo),
            "skipped_shards": skipped,
            "total_shards": total_shards,
            "complete": manifest["complete"],
            "out": str(out),
            "images_s": done / max(time.perf_counter() - t0, 1e-9),
        }
