"""Batched generation with a trained recipe."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from reidaug.data.market1501 import Market1501
from reidaug.data.pairs import Pair, PairDataset, to_uint8
from reidaug.training.recipe import Recipe


def generate_pairs(
    recipe: Recipe,
    ds: Market1501,
    pairs: Sequence[Pair],
    split: str = "gallery",
    batch_size: int = 32,
    workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[tuple[list[Pair], dict[str, np.ndarray]]]:
    """Generate the target of every ``(from, to)`` pair, batch by batch.

    Yields:
        ``(pairs of the batch, {output name: uint8 (B, H, W, 3)})`` with ``condition`` and
        ``target`` included, so metrics see exactly the images that were generated from.
    """
    data = PairDataset(ds, pairs, split, heatmap=recipe.cfg.heatmap)
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=workers)
    recipe.eval_mode()
    done = 0
    for batch in loader:
        idx = batch["index"].tolist()
        cond = batch["condition"].to(recipe.device)
        pose = batch["target_pose"].to(recipe.device)
        kps = [batch[k].to(recipe.device) for k in ("source_keypoints", "target_keypoints")]
        with torch.no_grad():
            outs = recipe.generate(cond, pose, *kps)
        arrays = {k: to_uint8(v.clamp(-1, 1)) for k, v in outs.items()}
        arrays["condition"] = to_uint8(batch["condition"])
        arrays["target"] = to_uint8(batch["target"])
        done += len(idx)
        if progress:
            progress(done, len(pairs))
        yield [data.pairs[i] for i in idx], arrays
