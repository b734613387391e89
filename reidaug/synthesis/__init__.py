"""Synthesis: batched generation with trained models."""

from reidaug.synthesis.generate import generate_pairs

__all__ = ["generate_pairs"]
