"""Every command has help text, an example, and a place in the README."""

from pathlib import Path

import click
import pytest

from reidaug.cli import cli

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _commands(group: click.Group, prefix: str = "reidaug"):
    for name, cmd in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        yield path, cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, path)


COMMANDS = list(_commands(cli))


def test_the_command_tree_is_complete():
    names = {p for p, _ in COMMANDS}
    for expected in ("reidaug train", "reidaug synthesize", "reidaug bench-reid", "reidaug demo",
                     "reidaug evaluate", "reidaug poses estimate", "reidaug data check"):  # fmt: skip
        assert expected in names


@pytest.mark.parametrize("path,cmd", COMMANDS, ids=[p for p, _ in COMMANDS])
def test_command_has_help_and_is_in_the_readme(path, cmd, runner):
    assert cmd.help and cmd.help.strip(), f"{path} has no help text"
    if not isinstance(cmd, click.Group):
        assert "Example:" in cmd.help, f"{path}'s help has no example"
    assert f"{path} " in README or f"{path}\n" in README or f"`{path}`" in README, (
        f"{path} is missing from README.md"
    )
    r = runner.invoke(cli, [*path.split()[1:], "--help"])
    assert r.exit_code == 0 and "Usage:" in r.output


def test_api_docstring_examples_run():
    """The runnable docstring examples of the Python API (the others need data or minutes)."""
    import doctest

    import reidaug.data.market1501
    import reidaug.data.pose
    import reidaug.models

    for mod in (reidaug.data.market1501, reidaug.data.pose, reidaug.models):
        failed, tried = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert tried > 0 and failed == 0, mod.__name__
