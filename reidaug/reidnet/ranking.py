"""Ranking metrics (CMC and mAP) with a per-query gallery exclusion mask.

torchreid's ``evaluate_rank`` removes only the gallery entries of the query's own id *and* own
camera. The identity judge (``reidaug.reid.idp``) must remove more: the condition and target
images and every same-id view from either of their cameras. This module ranks with any
``(queries, gallery)`` keep-mask and computes the figures exactly as torchreid's Market-1501
evaluation does (queries without a remaining true match are skipped; AP is the mean precision at
the true matches), so with the same-camera mask it reproduces torchreid's numbers (tested).
"""

from __future__ import annotations

import numpy as np


def same_camera_mask(q_pids, g_pids, q_camids, g_camids) -> np.ndarray:
    """The standard protocol: keep every gallery entry but the query's id seen by its camera."""
    q_pids, g_pids = np.asarray(q_pids)[:, None], np.asarray(g_pids)[None]
    q_camids, g_camids = np.asarray(q_camids)[:, None], np.asarray(g_camids)[None]
    return ~((q_pids == g_pids) & (q_camids == g_camids))


def rank(
    dist: np.ndarray, q_pids, g_pids, keep: np.ndarray, max_rank: int = 50
) -> tuple[np.ndarray, float, int]:
    """CMC and mAP of a distance matrix, ignoring the gallery entries where ``keep`` is False.

    Args:
        dist: ``(Q, G)`` distances, smaller is closer.
        q_pids, g_pids: identities of queries and gallery entries.
        keep: ``(Q, G)`` bool, the gallery entries each query is ranked against.
        max_rank: length of the returned CMC.

    Returns:
        ``(cmc, mAP, n_valid)``: ``cmc[k-1]`` is Rank-k over the ``n_valid`` queries that still
        have a true match in their gallery; mAP over the same queries.
    """
    dist = np.asarray(dist)
    q_pids, g_pids, keep = np.asarray(q_pids), np.asarray(g_pids), np.asarray(keep, bool)
    cmc_all, aps = [], []
    for lo in range(0, len(dist), 1024):  # blocks of queries: bounded memory on Market
        order = np.argsort(dist[lo : lo + 1024], axis=1, kind="stable")
        matches = g_pids[order] == q_pids[lo : lo + 1024, None]
        kept = np.take_along_axis(keep[lo : lo + 1024], order, axis=1)
        for m, k in zip(matches, kept, strict=True):
            hits = m[k]
            n_rel = int(hits.sum())
            if n_rel == 0:
                continue
            cmc = np.zeros(max_rank)
            cmc[int(np.argmax(hits)) :] = 1.0
            cmc_all.append(cmc)
            precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
            aps.append(float((precision * hits).sum() / n_rel))
    if not aps:
        return np.zeros(max_rank), 0.0, 0
    return np.mean(cmc_all, axis=0), float(np.mean(aps)), len(aps)
