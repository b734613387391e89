"""Training: one loop for every model, a step recipe per model, checkpoints and run directories."""

from reidaug.config import TrainConfig
from reidaug.training import mscgan as _mscgan  # noqa: F401  (registers the MsCGAN recipe)
from reidaug.training import pg2 as _pg2  # noqa: F401  (registers the PG2 recipe)
from reidaug.training.load import Generator, load_generator
from reidaug.training.loop import train
from reidaug.training.recipe import STEP_RECIPES, Recipe, Stage, build_recipe, register_recipe

__all__ = [
    "STEP_RECIPES",
    "Generator",
    "Recipe",
    "Stage",
    "TrainConfig",
    "build_recipe",
    "load_generator",
    "register_recipe",
    "train",
]
