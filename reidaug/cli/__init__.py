"""The ``reidaug`` command line: a thin layer over the library, one module per command."""

from reidaug.cli import data, train
from reidaug.cli.app import cli

cli.add_command(data.data)
cli.add_command(train.train_cmd)

__all__ = ["cli"]
