"""Identity preservation (idp): does a generated image still show its source person?

**Test-pair protocol.** A re-ID model trained on the real training set embeds every generated
test image and ranks the real gallery with torchreid's evaluation. The query's identity is the
source's; its camera is the *condition image's* camera, so torchreid's same-id same-camera rule
removes the condition image (and every other view of the person from that camera) from its
gallery. Copying the condition therefore earns nothing by itself, and a perfect generator, which
reproduces the real target (still in the gallery when it comes from another camera), scores
exactly the ceiling row. Junk images are not in the gallery; distractors are, as in torchreid.

**Training-id variant.** For shards of synthesized training ids, the re-ID classifier's top-1
accuracy on the source's training label: run it on every ``synthesize`` output before using it
for augmentation. The same figure on the real source images (which the model was trained on) is
the reference.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from reidaug.data.market1501 import Market1501
from reidaug.errors import UserError
from reidaug.reid import adapter
from reidaug.reid import model as reid_model
from reidaug.synthesis.shards import ShardDataset


def load_for(
    path: str | os.PathLike, ds: Market1501, device: torch.device | str = "cpu"
) -> tuple[torch.nn.Module, dict]:
    """Load a re-ID checkpoint and check that it was trained on ``ds``'s training ids."""
    model, meta = reid_model.load(path, device)
    if meta["dataset"] != ds.name or meta["num_classes"] != ds.num_train_ids:
        raise UserError(
            f"re-ID checkpoint {path} was trained on {meta['dataset']} ({meta['num_classes']} ids), "
            f"not {ds.name} ({ds.num_train_ids} ids)"
        )
    return model, meta


class IdpScorer:
    """Accumulates generated test images per source, then ranks them against the real gallery.

    Example:
        >>> scorer = IdpScorer(model, meta, ds)  # doctest: +SKIP
        >>> scorer.add("G1", images, pairs)  # doctest: +SKIP
        >>> scorer.score("G1")  # doctest: +SKIP
        {'rank1': 0.61, 'mAP': 0.32, 'n': 12000}
    """

    def __init__(self, model, meta: dict, ds: Market1501, device="cpu", batch_size: int = 64,
                 workers: int = 0) -> None:  # fmt: skip
        self.model, self.meta, self.device = model, meta, device
        self.batch_size, self.workers = batch_size, workers
        gallery = ds.gallery
        self.gf = reid_model.embed(model, gallery, meta, device, batch_size, workers)
        self.g_pids = [it.pid for it in gallery]
        self.g_camids = [it.camid for it in gallery]
        self.identity = {it.path.name: (it.pid, it.camid) for it in ds.items("gallery_all")}
        self.queries: dict[str, tuple[list[torch.Tensor], list[int], list[int]]] = {}

    def add(self, source: str, images: np.ndarray, pairs: Sequence[tuple[str, str]]) -> None:
        """Embed ``images`` (``uint8 (N, H, W, 3)``) generated for ``pairs`` (condition, target)."""
        keep = [i for i, (a, _) in enumerate(pairs) if self.identity.get(a, (-1, 0))[0] > 0]
        if not keep:
            return
        feats = reid_model.embed(
            self.model, [images[i] for i in keep], self.meta, self.device, self.batch_size
        )
        q = self.queries.setdefault(source, ([], [], []))
        q[0].append(feats)
        for i in keep:
            pid, cam = self.identity[pairs[i][0]]
            q[1].append(pid)
            q[2].append(cam)

    def score(self, source: str) -> dict[str, float]:
        """``{"rank1", "mAP", "n"}`` of the queries added under ``source``."""
        feats, pids, cams = self.queries[source]
        cmc, mAP = adapter.evaluate(
            torch.cat(feats), self.gf, pids, self.g_pids, cams, self.g_camids
        )
        return {"rank1": float(cmc[0]), "mAP": mAP, "n": len(pids)}


def train_id_accuracy(
    model, meta: dict, ds: Market1501, shards: ShardDataset, device="cpu", limit: int | None = None
) -> dict[str, dict[str, float]]:
    """Top-1 of the re-ID classifier on the source label of synthesized training-id images,
    and on the real source images they were made from."""
    n = len(shards) if limit is None else min(limit, len(shards))
    if n == 0:
        raise UserError("the shard folder holds no images")
    labels = torch.as_tensor(shards.column("label")[:n])
    preds = []
    for start in range(0, n, 1024):  # stream: a job's shards may not fit in memory
        images = [shards.image(*shards.locate(i)) for i in range(start, min(n, start + 1024))]
        preds.append(reid_model.classify(model, reid_model.embed(model, images, meta, device)))
    pred = torch.cat(preds)
    by_name = {it.path.name: it for it in ds.train}
    sources = sorted(set(shards.column("source")[:n].tolist()) & set(by_name))
    real = [by_name[s] for s in sources]
    real_pred = reid_model.classify(model, reid_model.embed(model, real, meta, device))
    real_labels = torch.as_tensor([it.pid for it in real])
    return {
        "synthetic": {"top1": float((pred == labels).float().mean()), "n": n},
        "real source images": {
            "top1": float((real_pred == real_labels).float().mean()) if real else float("nan"),
            "n": len(real),
        },
    }
