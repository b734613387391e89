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

from reidaug.errors import UserError, storage_message


def temp_name(path: str | os.PathLike, suffix: str = "") -> Path:
    """The hidden sibling ``.NAME.PID.tmpSUFFIX`` that a write of ``path`` goes through (the pid
    keeps two processes from sharing one temp file)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            p.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temp path beside ``path``; when the block succeeds, rename it onto ``path``.

    The block may write a file or make a folder there. On any failure the temp path is removed
    and ``path`` keeps what it held; a storage fault (full disk, read-only folder, permission
    denied) is raised as a ``UserError`` naming ``path``.

    Args:
        suffix: appended to the temp name, for writers that pick a format by extension.
    """
    path = Path(path)
    tmp = temp_name(path, suffix)
    try:
        yield tmp
        if path.is_dir() and tmp.is_dir():
            old = temp_name(path, ".old")
            os.replace(path, old)
            os.replace(tmp, path)
            _remove(old)
        else:
            os.replace(tmp, path)
    except BaseException as e:
        known = storage_message(e, path.parent) if isinstance(e, Exception) else None
        _remove(tmp)
        if known is not None:
            raise UserError(f"{known} (writing {path})") from None
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: object) -> None:
    """Write ``obj`` as indented JSON (with a final newline) to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=2) + "\n")


def save_torch(path: str | os.PathLike, obj: object) -> None:
    """``torch.save`` of ``obj`` (tensors and plain containers) to ``path`` atomically."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


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
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"cannot write {path}: folder {parent} does not exist")
    if path.is_dir():
        raise UserError(f"cannot write {path}: it is a folder")
    if not os.access(parent, os.W_OK):
        raise UserError(f"cannot write {path}: permission denied")
