"""reidaug: pose-guided person image generation for re-ID data augmentation."""

__version__ = "0.1.0"
