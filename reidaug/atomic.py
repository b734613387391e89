"""Every file and folder reidaug writes goes through here: a sibling temp path renamed into
place, so a killed or failed write never leaves a half file under the final name, and a full
disk or a read-only folder becomes one ``UserError`` line instead of a traceback."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from reidaug.errors import UserError, write_reason


def temp_name(path: str | os.PathLike, suffix: str = "") -> Path:
    """The hidden sibling ``.NAME.PID.tmpSUFFIX`` that a write of ``path`` goes through (the pid
    keeps two processes from sharing one temp file)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale(path: str | os.PathLike) -> None:
    """Remove the temp siblings of ``path`` left by writers that were killed (their process is
    gone), so that no later run trips over them or keeps a disk full."""
    path = Path(path)
    if not path.parent.is_dir():
        return
    head = f".{path.name}."
    for p in path.parent.iterdir():
        if not p.name.startswith(head) or ".tmp" not in p.name:
            continue
        pid = p.name[len(head) :].split(".")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            _remove(p)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            p.unlink()


def write_error(e: BaseException, path: Path, what: str | None = None, kept: str | None = None):
    """The ``UserError`` of a storage fault while writing ``path`` (``None`` for other errors):
    ``could not write WHAT (reason); KEPT``."""
    reason = write_reason(e, path.parent) if isinstance(e, Exception) else None
    if reason is None:
        return None
    tail = f"; {kept}" if kept else ""
    return UserError(f"could not write {what or path} ({reason}){tail}")


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike, suffix: str = "", what: str | None = None, kept: str | None = None
) -> Iterator[Path]:
    """Yield a temp path beside ``path``; when the block succeeds, rename it onto ``path``.

    The block may write a file or make a folder there (a folder replaces only an empty one).
    On any failure the temp path is removed and ``path`` keeps what it held; a storage fault
    (full disk, read-only folder, permission denied) is raised as a ``UserError``:
    ``could not write WHAT (reason); KEPT``.

    Args:
        suffix: appended to the temp name, for writers that pick a format by extension.
        what: how the message names the file [default: its path].
        kept: what the message says survives the failure.
    """
    path = Path(path)
    tmp = temp_name(path, suffix)
    remove_stale(path)
    try:
        yield tmp
        if path.is_dir() and tmp.is_dir():
            path.rmdir()  # only an empty folder gives way; callers refuse a full one first
        os.replace(tmp, path)
    except BaseException as e:
        err = write_error(e, path, what, kept)
        _remove(tmp)
        if err is not None:
            raise err from None
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: object) -> None:
    """Write ``obj`` as indented JSON (with a final newline) to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=2) + "\n")


def save_torch(
    path: str | os.PathLike, obj: object, what: str | None = None, kept: str | None = None
) -> None:
    """``torch.save`` of ``obj`` (tensors and plain containers) to ``path`` atomically.

    torch names the zip archive inside after a path it is given, here the temp file's, which
    holds the process id; through an open file it is always ``archive``, so equal objects give
    equal bytes and a file's digest identifies its contents across runs.
    """
    import torch

    with atomic_path(path, what=what, kept=kept) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)


def save_figure(path: str | os.PathLike, fig, dpi: int = 90) -> None:
    """A matplotlib figure as a PNG at ``path``, atomically; the figure is closed."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path, ".png") as tmp:
            fig.savefig(tmp, dpi=dpi)
    finally:
        plt.close(fig)


def check_writable(path: str | os.PathLike) -> None:
    """Refuse an output file whose folder is missing or read-only, before any long work."""
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        raise UserError(f"cannot write {path}: folder {parent} does not exist")
    if path.is_dir():
        raise UserError(f"cannot write {path}: it is a folder")
    if not os.access(parent, os.W_OK):
        raise UserError(f"cannot write {path}: permission denied")
