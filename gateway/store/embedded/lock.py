"""One gateway per state directory: an OS lock the embedded store holds while open.

Two processes on one SQLite state would each keep their own audit chain head
in memory and break each other's chain (the first then fails every decision).
So the directory is single-writer by design: ``flock`` on a lock file, which
the kernel releases when the holder exits however it exits (kill -9
included), and whose content names the holder's pid for the refusal message.

Within one process the lock is counted: the CLI takes it before it binds the
port or writes anything, and the store it then opens takes it again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

__all__ = ["LOCK_FILE", "StateDirLocked", "StateLock", "lock_state_dir"]

LOCK_FILE = "gateway.lock"


class StateDirLocked(Exception):
    """Another process holds the state directory."""

    def __init__(self, directory: Path, holder: int | None) -> None:
        who = f"another gateway (pid {holder})" if holder else "another gateway"
        super().__init__(
            f"{who} is already using the state directory {directory}: stop it first, "
            "or give this one its own --state-dir"
        )
        self.directory = directory
        self.holder = holder


class StateLock:
    __slots__ = ("_count", "_fd", "directory")

    def __init__(self, directory: Path, fd: int) -> None:
        self.directory = directory
        self._fd = fd
        self._count = 1

    def release(self) -> None:
        self._count -= 1
        if self._count == 0:
            _held.pop(self.directory, None)
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)


_held: dict[Path, StateLock] = {}


def lock_state_dir(directory: Path) -> StateLock:
    """Take the directory's lock (creating the directory 0700), or raise StateDirLocked."""
    directory = directory.resolve()
    held = _held.get(directory)
    if held is not None:
        held._count += 1
        return held
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_pid(fd)
        os.close(fd)
        raise StateDirLocked(directory, holder) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    lock = _held[directory] = StateLock(directory, fd)
    return lock


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None
