"""Every command has help text, an example, and a place in the README."""

import re
import subprocess
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
    for expected in (
        "reidaug train",
        "reidaug synthesize",
        "reidaug bench-reid",
        "reidaug demo",
        "reidaug evaluate",
        "reidaug poses estimate",
        "reidaug data check",
    ):
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


REPO = Path(__file__).resolve().parent.parent


def test_the_readme_is_a_product_page():
    assert len(README.splitlines()) <= 300


def _doc_commands(text: str) -> list[list[str]]:
    """The ``reidaug ...`` command lines of a page's code blocks (continuations joined, comments
    and shell variables left to the parser as plain words)."""
    import shlex

    out, block, in_code = [], "", False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        if not in_code:
            continue
        block += line.rstrip("\\") + " " if line.rstrip().endswith("\\") else line + "\n"
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        while words and "=" in words[0] and not words[0].startswith("-"):
            words = words[1:]  # VAR=value prefixes
        if words and words[0] == "reidaug":
            out.append(words[1:])
    return out


def _parse(args: list[str]) -> None:
    """Resolve ``args`` down the command tree and check every option against the command it
    follows, without running anything: an unknown command or option raises
    ``click.UsageError`` (values are not checked, as the files they name need not exist)."""
    cmd: click.Command = cli
    words = iter(args)
    for word in words:
        if word.startswith("-"):
            name = word.split("=")[0]
            opts = {o: p for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
            if name not in opts and name not in ("--help", "-h"):
                raise click.NoSuchOption(name)
            p = opts.get(name)
            takes_value = isinstance(p, click.Option) and not (p.is_flag or p.count)
            if takes_value and "=" not in word:
                next(words, None)
        elif isinstance(cmd, click.Group):
            if word not in cmd.commands:
                raise click.UsageError(f"No such command {word!r}")
            cmd = cmd.commands[word]
    if isinstance(cmd, click.Group):
        raise click.UsageError(f"{cmd.name} needs a subcommand")


PAGES = sorted([REPO / "README.md", *(REPO / "docs").rglob("*.md")])


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_every_command_a_page_shows_parses(page):
    for args in _doc_commands(page.read_text()):
        try:
            _parse(args)
        except click.exceptions.ClickException as e:
            raise AssertionError(f"{page.relative_to(REPO)}: reidaug {' '.join(args)}: {e}") from e


def test_the_command_parser_check_catches_a_bad_flag():
    with pytest.raises(click.exceptions.NoSuchOption):
        _parse(["train", "--no-such-flag", "1"])
    with pytest.raises(click.exceptions.UsageError):
        _parse(["no-such-command"])
    _parse(["poses", "estimate", "--images", "x", "--out", "y.csv"])
    assert len(_doc_commands(README)) >= 7  # the quickstart's commands are found


#: Phrases that narrate how the project was built rather than what it does.
NARRATIVE = re.compile(
    r"\b(?:in|this|that|earlier|previous|next|later) sessions?\b|\bsessions? \d|\bsittings?\b"
    r"|\brows? \d+ of the\b|\bas reidaug did before\b|\bre-ran\b|\bbefore 0\.\d\b",
    re.IGNORECASE,
)


def narratives(root: Path = REPO) -> list[str]:
    """``path:line: text`` of every tracked text file line (but the changelog's) that narrates."""
    files = subprocess.run(
        ["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split()
    hits = []
    for name in files:
        if name == "CHANGELOG.md" or not name.endswith((".md", ".py", ".sh", ".toml", ".txt")):
            continue
        for i, line in enumerate((root / name).read_text().splitlines(), 1):
            if NARRATIVE.search(line):
                hits.append(f"{name}:{i}: {line.strip()}")
    return hits


def test_no_tracked_file_narrates_the_projects_history():
    assert narratives() == []


def test_the_narrative_check_finds_one(tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    story = "measured in sess" + "ion 12 on a slow machine"  # split: this file stays clean
    (tmp_path / "a.md").write_text(f"fine\n{story}\n")
    (tmp_path / "CHANGELOG.md").write_text(f"{story}\n")
    subprocess.run(["git", "add", "."], cwd=tmp_path, check=True)
    assert narratives(tmp_path) == [f"a.md:2: {story}"]


def test_every_relative_link_of_the_docs_resolves():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target:
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(REPO)}: {target}")
    assert broken == []
