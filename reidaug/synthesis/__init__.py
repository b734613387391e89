"""Synthesis: pose banks, batched generation, HDF5 shards."""

from reidaug.synthesis.generate import generate_pairs
from reidaug.synthesis.job import synthesize
from reidaug.synthesis.poses import PoseBank, PoseSampler
from reidaug.synthesis.shards import ShardDataset, export, list_shards

__all__ = [
    "PoseBank",
    "PoseSampler",
    "ShardDataset",
    "export",
    "generate_pairs",
    "list_shards",
    "synthesize",
]
