"""Re-ID evaluation of synthetic data. ``adapter`` is the only module that imports torchreid.

Importing this package registers the ``idp`` scorer with :mod:`reidaug.metrics`.
"""

from reidaug.reid import idp as _idp  # noqa: F401  (registers the idp scorer)
from reidaug.reid.bench import BenchConfig, bench, lsro_loss

__all__ = ["BenchConfig", "bench", "lsro_loss"]
