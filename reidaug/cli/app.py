"""The click root group, the shared ``App`` (rich Console on stderr) and error display."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from reidaug import __version__
from reidaug.errors import UserError, memory_message, storage_message
from reidaug.progress import ProgressFn, render_stats


class App:
    """What every command shares: the console, verbosity, device and seed."""

    def __init__(self, verbosity: int = 0, device: str = "auto", seed: int = 0) -> None:
        self.console = Console(stderr=True, highlight=False)
        self.verbosity = verbosity
        self.device = device
        self.seed = seed

    def info(self, msg: str) -> None:
        if self.verbosity >= 0:
            self.console.print(msg)

    def debug(self, msg: str) -> None:
        if self.verbosity > 0:
            self.console.print(f"[dim]{msg}[/dim]")

    @contextlib.contextmanager
    def progress(
        self, description: str, total: int | None = None, rows: bool = False
    ) -> Iterator[ProgressFn]:
        """A rich progress bar; yields ``update(done, total, label=None, **stats)``, the
        contract of :mod:`reidaug.progress`, for library loops.

        The label and the stats are shown after the bar; with ``rows`` every distinct label
        gets a bar of its own, described by it. A bar appears with its first update, so a
        command that fails before any work shows none.
        """
        columns = [
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[extra]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
        ]
        prog = Progress(*columns, console=self.console, disable=self.verbosity < 0)
        tasks: dict[str, object] = {}
        first_total = total

        def update(
            done: int, total: int | None = None, label: str | None = None, **stats: object
        ) -> None:
            name = (label or "") if rows else ""
            total = first_total if total is None and not rows else total
            if not tasks:  # the display starts with the first bar, so an early error is alone
                prog.start()
            if name not in tasks:
                tasks[name] = prog.add_task(name or description, total=total, extra="")
            shown = [label] if label and not rows else []
            extra = " | ".join([*shown, render_stats(stats)] if stats else shown)
            prog.update(tasks[name], completed=done, total=total, extra=extra)

        try:
            yield update
        finally:
            if tasks:
                prog.stop()


def worker_message(text: str) -> str:
    """The error's own message when torch re-raised it from a DataLoader worker (whose text is
    ``Caught X in DataLoader worker process N. Original Traceback ... module.X: message``)."""
    if not (text.startswith("Caught ") and "Original Traceback" in text):
        return text
    last = [line for line in text.strip().splitlines() if line.strip()][-1]
    head, sep, message = last.partition(": ")
    return message.strip() if sep and " " not in head else last.strip()


class ReidaugGroup(click.Group):
    """A click group that turns library errors into one ``Error:`` line."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserError as e:
            raise click.ClickException(" ".join(worker_message(str(e)).split("\n"))) from None
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt as e:
            if str(e):
                click.echo(str(e), err=True)
            click.echo("Interrupted.", err=True)
            sys.exit(130)  # the shell's code for SIGINT
        except Exception as e:
            if os.environ.get("REIDAUG_DEBUG") == "1":
                raise
            known = storage_message(e) or memory_message(e)
            if known is not None:
                raise click.ClickException(known) from None
            first = (worker_message(str(e)).strip().splitlines() or [""])[0]
            click.echo(f"Error: unexpected {type(e).__name__}: {first}", err=True)
            click.echo(
                "Hint: rerun with REIDAUG_DEBUG=1 to see the traceback, and report it.", err=True
            )
            sys.exit(1)


@click.group(cls=ReidaugGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="reidaug")
@click.option("-v", "--verbose", count=True, help="More output (repeatable).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors and results.")
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where models run: CUDA when available with auto.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool, device: str, seed: int) -> None:
    """reidaug: pose-guided person generation (PG2, MsCGAN) for re-ID data augmentation.

    Example: reidaug data check --dataset market1501 --root ../shared/data/market1501
    """
    ctx.obj = App(verbosity=-1 if quiet else verbose, device=device, seed=seed)


pass_app = click.pass_obj


def comma_choices(choices, what: str = "name"):
    """A click callback: a comma-separated list of names from ``choices`` (``None`` stays
    ``None``); an unknown one lists the valid ones."""

    def parse(ctx, param, value: str | None) -> list[str] | None:
        if value is None:
            return None
        names = [s.strip() for s in value.split(",") if s.strip()]
        bad = [n for n in names if n not in choices]
        if bad or not names:
            raise click.BadParameter(
                f'unknown {what} "{bad[0] if bad else value}"; expected some of: '
                f"{', '.join(choices)}"
            )
        return names

    return parse


workers_option = click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Data loader processes.",
)


def subset_options(fn):
    """``--real-per-id``, ``--id-fraction`` and ``--subset-seed``: a seeded subset of the
    training set, for ``train`` and ``bench-reid`` alike."""
    fn = click.option(
        "--subset-seed",
        type=int,
        default=None,
        help="Seed of the --real-per-id / --id-fraction subset [default: 0].",
    )(fn)
    fn = click.option(
        "--id-fraction",
        type=click.FloatRange(0, 1, min_open=True),
        default=None,
        help="Scarce real data: keep this share of the training identities [default: all].",
    )(fn)
    return click.option(
        "--real-per-id",
        type=click.IntRange(min=1),
        default=None,
        help="Scarce real data: keep K images of every training identity (a seeded subset) "
        "[default: all]; bench-reid refuses shards of a generator trained on more.",
    )(fn)
