"""The warehouse's storage: one run at a time, and one line for a locked file or a full disk.

- ``RunLock``: an OS file lock (``fcntl.flock``) on ``<warehouse>.lock``, held by a run from its start to its
  end, so that two runs never write the warehouse at the same time (one ingesting inside the other's dbt
  build). The holder writes who it is into the lock file (run id, command, PID, start time); a run that finds
  the lock taken waits for it up to a limit, or is refused with one line naming the holder. The kernel
  releases the lock when its process ends, however it ends (SIGKILL too): a lock is never stale.
- ``storage_problem(error)``: one line for the two storage failures a user can act on, found anywhere in an
  exception's chain (a follow-on "cannot rollback" hides the cause in ``__context__``): a DuckDB file locked
  by another process (the file and the holder DuckDB names), and a full disk (the file system, its free
  space, the file that could not be written). ``None`` for anything else.

Plain Python without Dagster: the Dagster resource (orchestration/resources.py) and the command line both
use it. Linux/Unix only (``fcntl``), like the rest of the project's tooling.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

LOCK_SUFFIX = ".lock"
# DuckDB: 'IO Error: Could not set lock on file "<file>": Conflicting lock is held in <program> (PID <n>) by
# user <u>. See also https://duckdb.org/docs/stable/connect/concurrency'
_LOCK_CONFLICT = re.compile(r'Could not set lock on file "(?P<file>[^"]+)": Conflicting lock is held in '
                            r'(?P<holder>.*?)(?:\. See also|\.?\s*$)', re.M)
# DuckDB: 'Could not write file "<file>": No space left on device' (also "Could not write to file", "truncate")
_DISK_FULL = re.compile(r'file "(?P<file>[^"]+)"[^\n]*?(?:No space left on device|Disk quota exceeded)')
_DISK_FULL_TEXT = ("No space left on device", "Disk quota exceeded")
_DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class RunLockBusy(RuntimeError):
    """Another run holds the warehouse's run lock (the message names it, in one line)."""


class RunLock:
    """The warehouse's run lock: ``with RunLock(path).held(who, wait_seconds=…):`` for the whole run."""

    def __init__(self, warehouse_path: Path | str):
        self.warehouse_path = Path(warehouse_path)
        self.path = self.warehouse_path.with_name(self.warehouse_path.name + LOCK_SUFFIX)

    def holder(self) -> str:
        """Who holds the lock, as its holder wrote it (run, command, PID, since when); '' if unknown."""
        try:
            text = self.path.read_text(encoding="utf-8")
            info = json.loads(text) if text.strip() else {}
        except (OSError, ValueError):
            return ""
        if not isinstance(info, dict):
            return ""
        parts = [f"run {info['run_id']}" if info.get("run_id") else "",
                 f"`{info['command']}`" if info.get("command") else "",
                 f"PID {info['pid']}" if info.get("pid") else "",
                 f"since {info['since']}" if info.get("since") else ""]
        return ", ".join(p for p in parts if p)

    def held(self, who: str = "", *, wait_seconds: float = 0.0, poll_seconds: float = 1.0,
             on_wait: Callable[[str], None] | None = None) -> _Held:
        """A context manager holding the lock. If another process holds it, wait up to ``wait_seconds``
        (calling ``on_wait`` once with a line naming the holder), then raise ``RunLockBusy``."""
        return _Held(self, who, wait_seconds, poll_seconds, on_wait)

    def busy_message(self, waited: float) -> str:
        holder = self.holder() or "another process"
        waited_text = f" (waited {waited:.0f} s)" if waited >= 1 else ""
        return (f"the warehouse {self.warehouse_path} is in use by {holder}{waited_text}: one run at a time "
                f"writes it (lock file {self.path}); start this run again when that one has finished")


class _Held:
    def __init__(self, lock: RunLock, who: str, wait_seconds: float, poll_seconds: float,
                 on_wait: Callable[[str], None] | None):
        self.lock, self.who, self.wait_seconds, self.poll_seconds, self.on_wait = (
            lock, who, wait_seconds, poll_seconds, on_wait)
        self.fd: int | None = None

    def __enter__(self) -> RunLock:
        lock = self.lock
        lock.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock.path, os.O_RDWR | os.O_CREAT, 0o644)
        started = time.monotonic()
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - started
                if waited >= self.wait_seconds:
                    os.close(fd)
                    raise RunLockBusy(lock.busy_message(waited)) from None
                if not told and self.on_wait is not None:
                    self.on_wait(f"waiting for the warehouse {lock.warehouse_path}: it is in use by "
                                 f"{lock.holder() or 'another process'} (one run at a time; waiting up to "
                                 f"{self.wait_seconds:.0f} s)")
                    told = True
                time.sleep(min(self.poll_seconds, max(self.wait_seconds - waited, 0.01)))
        self.fd = fd
        info = {"run_id": self.who, "command": _command(), "pid": os.getpid(),
                "since": dt.datetime.now().replace(microsecond=0).isoformat(sep=" ")}
        try:  # who holds it, for the next one; the lock holds even if this cannot be written (a full disk)
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
        except OSError:
            pass
        return lock

    def __exit__(self, *exc_info: object) -> None:
        if self.fd is None:
            return
        try:
            os.ftruncate(self.fd, 0)
        except OSError:
            pass
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


def _command() -> str:
    """This process's program and subcommand (``dagster asset materialize``), without its options' values."""
    args = [Path(sys.argv[0]).name if sys.argv else "python", *sys.argv[1:3]]
    return " ".join(a for a in args if a and not a.startswith("-"))[:80]


# --- one line for a storage failure ---------------------------------------------------------------------


def storage_problem(error: BaseException, written: Sequence[Path | str] = ()) -> str | None:
    """One line for a locked DuckDB file or a full disk anywhere in ``error``'s chain, else ``None``.

    ``written``: where the failed work wrote, to name the disk when the error does not name a file (polars
    says only "No space left on device (os error 28)")."""
    for link in _chain(error):
        if isinstance(link, OSError) and link.errno in _DISK_FULL_ERRNOS and link.filename:
            return disk_full_line(Path(os.fsdecode(link.filename)))
        if isinstance(link, RunLockBusy):
            return str(link)
        line = storage_problem_in_text(str(link), written)
        if line:
            return line
    return None


def storage_problem_in_text(text: str, written: Sequence[Path | str] = ()) -> str | None:
    """The same, read from a message (a dbt log, DuckDB's error text)."""
    match = _LOCK_CONFLICT.search(text)
    if match:
        return (f"{match.group('file')} is locked by another process ({_holder(match.group('holder'))}): while "
                "a process writes a DuckDB file, no other may open it; wait until it has finished or close it, "
                "then start again")
    match = _DISK_FULL.search(text)
    if match:
        return disk_full_line(Path(match.group("file")))
    if any(marker in text for marker in _DISK_FULL_TEXT) or re.search(r"\bos error 28\b|\[Errno 28\]", text):
        if written:
            return disk_full_line(Path(written[0]))
        return "disk full: no space left on device; free space on it and start again"
    return None


def _holder(text: str) -> str:
    """DuckDB's '/usr/bin/python3.11 (PID 8289) by user anna' as 'python3.11, PID 8289, user anna'."""
    match = re.fullmatch(r"(?P<program>.*?)(?: \(PID (?P<pid>\d+)\))?(?: by user (?P<user>.+))?", text.strip())
    if not match:
        return text.strip()
    parts = [Path(match.group("program")).name if match.group("program") else "",
             f"PID {match.group('pid')}" if match.group("pid") else "",
             f"user {match.group('user')}" if match.group("user") else ""]
    return ", ".join(p for p in parts if p) or "unknown"


def disk_full_line(path: Path) -> str:
    """'disk full: the file system <mount> had no room to write <file> (now <free> free of <total>); …'."""
    mount = mount_point(path)
    try:
        usage = shutil.disk_usage(mount)
        space = f" (now {_size(usage.free)} free of {_size(usage.total)})"
    except OSError:
        space = ""
    return (f"disk full: the file system {mount} had no room to write {path}{space}; free space on it or "
            "move the file to a larger disk, then start again")


def mount_point(path: Path) -> Path:
    """The mount point of the file system that holds ``path`` (or would hold it, if it does not exist)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, then its causes and contexts (the error a follow-on error happened while handling)."""
    seen: set[int] = set()
    todo = [error]
    while todo:
        link = todo.pop(0)
        if link is None or id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        todo.append(link.__cause__)
        if not link.__suppress_context__:  # `raise … from None` hid it on purpose
            todo.append(link.__context__)


def _size(count: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count} bytes"
