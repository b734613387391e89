"""The pose bank and the strategies that pick target poses for each source image."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from reidaug.config import Strategy
from reidaug.data import keypoints as K
from reidaug.errors import UserError
from reidaug.names import STRATEGIES


def normalise(kps: np.ndarray) -> np.ndarray:
    """Translation- and scale-free pose features: ``(N, 18, 2)`` -> ``(N, 54)``.

    Keypoints are centred on the hip midpoint and divided by the neck-to-hip length (falling back
    to the shoulder-to-hip length); missing points are 0 and flagged in 18 presence columns.
    """
    kps = np.asarray(kps, dtype=np.float64)
    ok = K.present(kps)
    hips = (kps[:, K.KP["Rhip"]] + kps[:, K.KP["Lhip"]]) / 2
    shoulders = (kps[:, K.KP["Rsho"]] + kps[:, K.KP["Lsho"]]) / 2
    scale = np.linalg.norm(shoulders - hips, axis=1).clip(min=1.0)[:, None, None]
    rel = np.where(ok[..., None], (kps - hips[:, None]) / scale, 0.0)
    return np.concatenate([rel.reshape(len(kps), -1), ok.astype(np.float64)], axis=1)


@dataclass
class PoseBank:
    """Valid training poses (shoulders and hips present), each with the image that donated it."""

    names: list[str]
    keypoints: np.ndarray  # (N, 18, 2)

    @classmethod
    def from_annotations(cls, names: Sequence[str], annotations: dict[str, np.ndarray]) -> PoseBank:
        keep = [n for n in names if n in annotations and K.is_valid_pose(annotations[n])]
        kps = np.stack([annotations[n] for n in keep]) if keep else np.zeros((0, 18, 2), np.int64)
        return cls(keep, kps)

    def __len__(self) -> int:
        return len(self.names)


class PoseSampler:
    """Chooses ``n`` target poses per source, never the source image's own.

    * ``random``: uniform over the bank, seeded per source.
    * ``kmeans``: ``n`` canonical poses, the bank poses nearest the k-means centroids of the
      normalised keypoints (as PN-GAN does with 8 poses); the same for every source.
    * ``farthest``: farthest-point sampling in normalised pose space, starting from the source's
      own pose (or a seeded random one when it has none), so the poses differ from the source
      and from each other.
    """

    def __init__(
        self, bank: PoseBank, n: int, strategy: Strategy = "random", seed: int = 0
    ) -> None:
        if n < 1:
            raise UserError(f"--poses must be at least 1, got {n}")
        if strategy not in STRATEGIES:
            raise UserError(
                f'unknown strategy "{strategy}"; expected one of: {", ".join(STRATEGIES)}'
            )
        need = n + 1  # the source's own pose is never used
        if len(bank) < need:
            raise UserError(
                f"the pose bank has {len(bank)} valid poses; --poses {n} with {strategy} needs at "
                f"least {need}"
            )
        self.bank, self.n, self.strategy, self.seed = bank, n, strategy, seed
        self.index = {name: i for i, name in enumerate(bank.names)}
        self.features = normalise(bank.keypoints)
        if strategy == "kmeans":
            self.canonical = self._kmeans_order()

    def _kmeans_order(self) -> np.ndarray:
        """For each of ``n`` centroids, all bank indices sorted by distance (nearest first): with
        ``n`` close to the bank's size, a centroid's nearest poses may all be taken already."""
        from scipy.cluster.vq import kmeans2

        rng = np.random.default_rng(self.seed)
        _, labels = kmeans2(self.features, self.n, minit="++", seed=rng)
        cents = np.stack(
            [
                self.features[labels == c].mean(0) if (labels == c).any() else self.features[c]
                for c in range(self.n)
            ]
        )
        d = ((self.features[None] - cents[:, None]) ** 2).sum(-1)
        return np.argsort(d, axis=1, kind="stable").astype(np.int32)

    def sample(self, source: str, source_index: int) -> list[int]:
        """Bank indices of the target poses for one source."""
        own = self.index.get(source, -1)
        if self.strategy == "random":
            rng = np.random.default_rng([self.seed, source_index])
            picks = rng.choice(len(self.bank) - (own >= 0), size=self.n, replace=False)
            return [int(p + (own >= 0 and p >= own)) for p in picks]
        if self.strategy == "kmeans":
            out: list[int] = []
            taken = {own}
            for order in self.canonical:  # n + 1 <= bank size: a free pose always remains
                pick = next(int(i) for i in order if int(i) not in taken)
                out.append(pick)
                taken.add(pick)
            return out
        rng = np.random.default_rng([self.seed, source_index])
        start = own if own >= 0 else int(rng.integers(len(self.bank)))
        dist = ((self.features - self.features[start]) ** 2).sum(1)
        dist[start] = -1
        out = []
        for _ in range(self.n):
            i = int(np.argmax(dist))
            out.append(i)
            dist = np.minimum(dist, ((self.features - self.features[i]) ** 2).sum(1))
            dist[out] = -1
            dist[start] = -1
        return out
