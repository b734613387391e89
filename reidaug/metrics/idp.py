"""Identity preservation (idp): does a generated image still show its source person?

**Test-pair protocol.** A re-ID model trained on the real training set (the *judge*) embeds every
generated test image and ranks the real gallery. For a query made from the test pair
(condition, target), the gallery leaves out the condition and the target images and every
same-id image taken by **the condition's camera or the target's camera**: what is left of the
person are views from other cameras. A pixel copy of either real image therefore earns nothing
from itself or from its neighbouring frames, and the real-target row is a true ceiling: it
cannot beat the judge's own Rank-1 on real queries by more than chance. Queries whose person has
no view left (seen by two cameras only) are skipped, for every source alike. Junk images are not
in the gallery; distractors are, as in torchreid.

**The judge's own quality** travels with every idp report (records with source
``judge (real queries)``): its Rank-1 and mAP on the dataset's real query set under the standard
protocol. A judge below 30 % mAP ranks sources only coarsely.

**Training-id variant.** For shards of synthesized training ids, the re-ID classifier's top-1
accuracy on the source's training label: run it on every ``synthesize`` output before using it
for augmentation. The same figure on the real source images (which the model was trained on) is
the reference; when the generator was trained on a subset (``--real-per-id``), the same figure
on the other real images of the same people (real new views, which the classifier never saw)
is the fairer one.

**As a metric.** ``idp`` registers with the evaluation engine like every other scorer; the
judge is a re-ID network from :mod:`reidaug.reidnet`, loaded from a file or from the user cache
(trained there once on first use).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from reidaug.data.market1501 import Market1501
from reidaug.errors import UserError
from reidaug.metrics.registry import Batch, EvalContext, figure
from reidaug.names import MODEL_ROLES
from reidaug.progress import relabel
from reidaug.reidnet import adapter
from reidaug.reidnet import model as reid_model
from reidaug.reidnet.cache import cached_model
from reidaug.reidnet.ranking import rank
from reidaug.reidnet.recipe import ReidRecipe
from reidaug.synthesis.shards import ShardDataset, check_fits
from reidaug.weights import file_sha256

JUDGE = "judge (real queries)"
#: Below this mAP on real queries the judge's idp figures get a warning.
WEAK_JUDGE_MAP = 0.30


class IdpScorer:
    """Accumulates generated test images per source, then ranks them against the real gallery
    under the two-camera exclusion of the module docstring.

    Example:
        >>> scorer = IdpScorer(model, meta, ds)  # doctest: +SKIP
        >>> scorer.add("G1", images, pairs)  # doctest: +SKIP
        >>> scorer.score("G1")  # doctest: +SKIP
        {'rank1': 0.41, 'mAP': 0.22, 'n': 11890}
    """

    def __init__(
        self,
        model,
        meta: dict,
        ds: Market1501,
        device="cpu",
        batch_size: int = 64,
        workers: int = 0,
    ) -> None:
        self.model, self.meta, self.device, self.ds = model, meta, device, ds
        self.batch_size, self.workers = batch_size, workers
        gallery = ds.gallery
        self.gf = reid_model.embed(model, gallery, meta, device, batch_size, workers)
        self.g_pids = np.asarray([it.pid for it in gallery])
        self.g_camids = np.asarray([it.camid for it in gallery])
        self.identity = {it.path.name: (it.pid, it.camid) for it in ds.items("gallery_all")}
        # per source: features, query pid, condition camera, target camera
        self.queries: dict[str, tuple[list[torch.Tensor], list[int], list[int], list[int]]] = {}

    def add(self, source: str, images: np.ndarray, pairs: Sequence[tuple[str, str]]) -> None:
        """Embed ``images`` (``uint8 (N, H, W, 3)``) generated for ``pairs`` (condition, target)."""
        keep = [i for i, (a, _) in enumerate(pairs) if self.identity.get(a, (-1, 0))[0] > 0]
        if not keep:
            return
        feats = reid_model.embed(
            self.model, [images[i] for i in keep], self.meta, self.device, self.batch_size
        )
        q = self.queries.setdefault(source, ([], [], [], []))
        q[0].append(feats)
        for i in keep:
            a, b = pairs[i]
            pid, cam_a = self.identity[a]
            q[1].append(pid)
            q[2].append(cam_a)
            q[3].append(self.identity.get(b, (pid, cam_a))[1])

    def keep_mask(self, pids, cams_a, cams_b) -> np.ndarray:
        """``(queries, gallery)``: False for the query's id seen by the condition's or the
        target's camera (which removes both real images of the pair)."""
        pids, a, b = (np.asarray(v)[:, None] for v in (pids, cams_a, cams_b))
        same = self.g_pids[None] == pids
        return ~(same & ((self.g_camids[None] == a) | (self.g_camids[None] == b)))

    def score(self, source: str) -> dict[str, float]:
        """``{"rank1", "mAP", "n"}`` of the queries added under ``source`` (``n``: queries with
        a view of their person left in the gallery)."""
        feats, pids, cams_a, cams_b = self.queries[source]
        dist = adapter.distance(torch.cat(feats), self.gf)
        cmc, mAP, n = rank(dist, pids, self.g_pids, self.keep_mask(pids, cams_a, cams_b))
        return {"rank1": float(cmc[0]), "mAP": mAP, "n": n}


def judge_quality(model, meta: dict, ds: Market1501, device="cpu", gallery_features=None) -> dict:
    """The judge's ``{"rank1", "mAP", "n"}`` on ``ds``'s real queries (standard protocol): the
    figures stored with the checkpoint when it has them, else computed here."""
    q = meta.get("quality")
    if not q:
        q = reid_model.evaluate_model(model, ds, meta, device, 0, gallery_features)
    return {"rank1": float(q["rank1"]), "mAP": float(q["mAP"]), "n": len(ds.query)}


def train_id_accuracy(
    model, meta: dict, ds: Market1501, shards: ShardDataset, device="cpu", limit: int | None = None
) -> dict[str, dict[str, float]]:
    """Top-1 of the re-ID classifier on the source label of synthesized training-id images,
    on the real source images they were made from, and, when the generator saw only some of
    each person's images (``--real-per-id``), on the other real images of the same people: a
    real new view, the reference for a synthetic one when the classifier learnt the sources by
    heart."""
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
    out = {
        "synthetic": {"top1": float((pred == labels).float().mean()), "n": n},
        "real source images": {
            "top1": float((real_pred == real_labels).float().mean()) if real else float("nan"),
            "n": len(real),
        },
    }
    people = {int(x) for x in labels.tolist()}
    seen = set(shards.column("source").tolist())  # every source of the job, not only the first n
    unseen = [it for it in ds.train if it.pid in people and it.path.name not in seen]
    if unseen:
        preds = [
            reid_model.classify(model, reid_model.embed(model, unseen[i : i + 1024], meta, device))
            for i in range(0, len(unseen), 1024)
        ]
        hit = torch.cat(preds) == torch.as_tensor([it.pid for it in unseen])
        out["real unseen images"] = {"top1": float(hit.float().mean()), "n": len(unseen)}
    return out


def judge_name(cfg) -> str:
    """What every idp figure says of its judge: the file, or the recipe of the cached model."""
    if cfg.reid_checkpoint is not None:
        return Path(cfg.reid_checkpoint).name
    return f"{cfg.reid_recipe.get('recipe', 'cpu')} recipe"


def judge_checkpoint(ctx: EvalContext) -> Path:
    """The configured judge file, or the cached re-ID model of the dataset (trained on first
    use) of ``cfg.reid_recipe``'s ``recipe`` (``cpu`` unless named; ``pretrained`` is the
    ImageNet MobileNetV2), its other keys overriding the recipe's fields."""
    cfg = ctx.cfg
    if cfg.reid_checkpoint is not None:
        return Path(cfg.reid_checkpoint)
    options = dict(cfg.reid_recipe)
    workers = options.pop("workers", 1)
    recipe = ReidRecipe.named(options.pop("recipe", "cpu"), **options)

    return cached_model(
        recipe,
        ctx.ds.name,
        str(ctx.ds.root),
        seed=MODEL_ROLES["idp-judge"],
        device=ctx.device,
        workers=workers,
        progress=relabel(ctx.progress, "re-ID model"),  # steps, with the epoch among its stats
        log=ctx.log,
    )


class IdpMetric:
    """The ``idp`` scorer: per protocol, idp Rank-1 and mAP of every source (the ranking of
    :class:`IdpScorer`); once, the judge's own quality on the real queries and, with
    ``cfg.shards``, the training-id top-1 of the synthesized images."""

    def __init__(self, ctx: EvalContext) -> None:
        self.ctx = ctx
        self.shards = None
        if ctx.cfg.shards is not None:  # before any work: shards of another dataset are refused
            self.shards = ShardDataset(ctx.cfg.shards)
            check_fits(self.shards, ctx.ds)
        judge = judge_checkpoint(ctx)
        gen = ctx.generator
        trained_against = gen.config.id_checkpoint_sha256 if gen is not None else None
        if trained_against and file_sha256(judge) == trained_against:
            ctx.log(
                f"warning: the idp judge {judge} is the identity network this generator was "
                "trained "
                "against: its idp figures are flattered; judge with an independent re-ID model"
            )
        self.model, self.meta = reid_model.load_for(
            judge, ctx.ds.name, ctx.ds.num_train_ids, ctx.device
        )
        self.ranker: IdpScorer | None = None
        self.protocol = ""
        self.judge = judge_name(ctx.cfg)

    def start(self, protocol: str) -> None:
        if self.ranker is None:  # once: every protocol ranks the same gallery
            self.ctx.log(f"idp: embedding the {self.ctx.ds.name} gallery")
            self.ranker = IdpScorer(
                self.model, self.meta, self.ctx.ds, self.ctx.device, self.ctx.cfg.batch_size
            )
        self.ranker.queries.clear()
        self.protocol = protocol

    def add(self, batch: Batch) -> None:
        assert self.ranker is not None
        for src, imgs in batch.images.items():
            self.ranker.add(src, imgs, batch.pairs)

    def records(self) -> list[dict]:
        assert self.ranker is not None
        out = []
        for src in self.ranker.queries:
            sc = self.ranker.score(src)
            for k in ("rank1", "mAP"):
                out.append(figure(f"idp-{k}", self.protocol, src, sc[k], sc["n"], judge=self.judge))
        return out

    def finish(self) -> list[dict]:
        ctx, out = self.ctx, []
        gf = self.ranker.gf if self.ranker is not None else None
        q = judge_quality(self.model, self.meta, ctx.ds, ctx.device, gf)
        for k in ("rank1", "mAP"):
            out.append(figure(f"idp-{k}", "real queries", JUDGE, q[k], q["n"], judge=self.judge))
        ctx.log(
            f"idp judge ({self.judge}) on the real {ctx.ds.name} queries: "
            f"mAP {100 * q['mAP']:.1f}%, "
            f"Rank-1 {100 * q['rank1']:.1f}%"
        )
        if q["mAP"] < WEAK_JUDGE_MAP:
            ctx.log(
                f"warning: the idp judge reaches only {100 * q['mAP']:.1f}% mAP on real queries "
                f"(below {100 * WEAK_JUDGE_MAP:.0f}%): its idp figures rank sources only coarsely"
            )
        if ctx.cfg.shards is not None:
            ctx.log(f"idp: classifying the training-id images of {ctx.cfg.shards}")
            shards = self.shards
            for src, r in train_id_accuracy(
                self.model, self.meta, ctx.ds, shards, ctx.device, ctx.cfg.limit
            ).items():
                out.append(
                    figure("idp-top1", "train-ids", src, r["top1"], r["n"], judge=self.judge)
                )
        return out
