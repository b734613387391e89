"""Data: datasets, keypoints, pose rendering and pairs.

Datasets are registered by name in a plain dict; ``build_dataset("market1501", root)`` builds one.
"""

from __future__ import annotations

import os

from reidaug.data.folder import FolderDataset
from reidaug.data.keypoints import read_annotations, write_annotations
from reidaug.data.market1501 import Item, Market1501
from reidaug.data.pairs import PairDataset, pg2_test_pairs, train_pairs
from reidaug.data.pose import pose_mask, render_heatmaps
from reidaug.data.synthetic import SyntheticMarket, make_synthetic
from reidaug.errors import UserError

DATASETS: dict[str, type[Market1501]] = {}


def register_dataset(name: str, cls: type[Market1501]) -> None:
    """Register a dataset class under ``name``."""
    DATASETS[name] = cls


def build_dataset(
    name: str, root: str | os.PathLike | None = None, annotations: str | os.PathLike | None = None
) -> Market1501:
    """Build a registered dataset; an unknown name lists the valid ones."""
    if name not in DATASETS:
        raise UserError(f'Unknown dataset "{name}"; expected one of: {", ".join(DATASETS)}')
    return DATASETS[name](root, annotations)


register_dataset("market1501", Market1501)
register_dataset("synthetic", SyntheticMarket)
register_dataset("folder", FolderDataset)

__all__ = [
    "DATASETS",
    "FolderDataset",
    "Item",
    "Market1501",
    "PairDataset",
    "SyntheticMarket",
    "build_dataset",
    "make_synthetic",
    "pg2_test_pairs",
    "pose_mask",
    "read_annotations",
    "register_dataset",
    "render_heatmaps",
    "train_pairs",
    "write_annotations",
]
