"""One job per output folder: a lock that a second job meets with an error naming the holder.

The lock is an advisory ``flock`` on ``FOLDER/.reidaug-NAME.lock``: the kernel drops it when its
process ends, however it ends, so a killed job never leaves a folder locked. The file keeps the
holder's pid and command for the message, and is removed when the job ends normally; a job that
opened a file another job has just removed tries again on the new one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from reidaug.errors import UserError


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, name: str = "job") -> Iterator[Path]:
    """Hold the lock ``name`` of ``folder`` (made if needed) for the block.

    Raises:
        UserError: another process holds it; the message names that process and its command.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".reidaug-{name}.lock"
    fd = _acquire(path, folder)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}: {' '.join(_command())}".encode(), 0)
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # while still held: a waiting job then retries on a fresh file
        os.close(fd)  # closing releases the lock


def _acquire(path: Path, folder: Path) -> int:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise UserError(
                f"{folder} is in use by another reidaug job ({holder}); wait for it to finish "
                "or choose another folder"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the holder removed this file as it finished: lock the new one


def _command() -> list[str]:
    argv = list(sys.argv)
    if argv and argv[0].endswith(("reidaug", "__main__.py")):
        argv[0] = "reidaug"
    return argv
