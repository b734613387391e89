"""The ``reidaug`` command line: a thin layer over the library, one module per command."""

from reidaug.cli import data
from reidaug.cli.app import cli

cli.add_command(data.data)

__all__ = ["cli"]
