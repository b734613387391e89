"""The with/without re-ID experiment: the same recipe trained on real data and on real plus
synthetic data, per seed, with paired statistics (config, plan, run, stats, report)."""

from reidaug.bench.config import ARMS, BenchConfig
from reidaug.bench.run import bench
from reidaug.reidnet.train import lsro_loss

__all__ = ["ARMS", "BenchConfig", "bench", "lsro_loss"]
