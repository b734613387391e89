"""Errors that the CLI shows to the user as one line."""

from __future__ import annotations

import os
import shutil


class UserError(Exception):
    """A problem with the user's input (paths, flags, files), shown as ``Error: <message>``."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during long work, with what it means for the user (what a resume will redo)."""


#: errno values that mean "this output cannot be written here", not a bug.
_WRITE_ERRNOS = {
    13: "permission denied",
    30: "read-only file system",
    28: "no space left on device",
    122: "disk quota exceeded",
    27: "file too large",
}


def storage_message(e: BaseException, folder: str | os.PathLike | None = None) -> str | None:
    """One line for an ordinary storage fault (read-only folder, full disk), or ``None``:
    ``could not write FILE (reason)`` when the error names its file, else the reason."""
    reason = write_reason(e, folder)
    if reason is None:
        return None
    if isinstance(e, OSError):
        where = f" {e.filename}" if e.filename else ""
        return f"could not write{where} ({reason})"
    return reason


def write_reason(e: BaseException, folder: str | os.PathLike | None = None) -> str | None:
    """Why a write failed, when it is an ordinary storage fault, else ``None``.

    Knows ``OSError`` by errno, and the ``RuntimeError`` texts with which torch's and HDF5's
    writers report a failed write; for those, a ``folder`` with (almost) no free space left is
    named a full disk. Call it before removing what the failed write left behind.
    """
    if isinstance(e, OSError) and e.errno in _WRITE_ERRNOS:
        return _WRITE_ERRNOS[e.errno]
    text = str(e)
    if isinstance(e, RuntimeError) and any(
        k in text.lower()
        for k in ("write failed", "inline_container", "can't write data", "no space left")
    ):
        if folder is not None:
            try:
                if shutil.disk_usage(folder).free < 1 << 20:
                    return "no space left on device"
            except OSError:
                pass
        return "a write failed (is the disk full?)"
    return None


def memory_message(e: BaseException) -> str | None:
    """One line for an allocation failure (CPU or CUDA), or ``None``."""
    text = str(e)
    if (
        isinstance(e, MemoryError)
        or type(e).__name__ == "OutOfMemoryError"
        or (
            isinstance(e, RuntimeError)
            and ("can't allocate memory" in text or "out of memory" in text)
        )
    ):
        return "out of memory: use a smaller --batch-size (or --width)"
    return None
