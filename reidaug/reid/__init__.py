"""Re-ID evaluation of synthetic data. ``adapter`` is the only module that imports torchreid."""

from reidaug.reid.bench import BenchConfig, bench, lsro_loss

__all__ = ["BenchConfig", "bench", "lsro_loss"]
