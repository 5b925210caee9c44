"""Run a command and measure it: wall time and the peak memory of its whole process tree.

The peak is the largest sum of the resident set sizes (RSS) of the command and every process below it,
polled every ``interval`` seconds (psutil). A short spike between two polls can be missed; at the sizes
measured here (seconds to minutes, gigabytes) the poll is far finer than the changes.

A run can be given a memory ceiling and a time limit: the tree is killed when it passes either, and the
result says so instead of a time (the benchmark reports "did not finish" for the pandas peer where it does
not fit in memory).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

GIB = 1 << 30


@dataclass
class Measurement:
    command: str
    seconds: float
    peak_rss_bytes: int
    returncode: int
    stopped: str | None = None  # why the harness stopped it ("memory ceiling …", "time limit …"), or None
    output_tail: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.stopped is None

    @property
    def peak_gib(self) -> float:
        return self.peak_rss_bytes / GIB


def tree_rss(process: psutil.Process) -> int:
    """RSS of a process and all its descendants, in bytes (processes that end meanwhile count as 0)."""
    total = 0
    try:
        processes = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for proc in processes:
        try:
            total += proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def run_measured(
    command: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
    log: Path | None = None, memory_ceiling_bytes: int | None = None, time_limit_seconds: float | None = None,
    interval: float = 0.1,
) -> Measurement:
    """Run ``command`` to its end (or to a ceiling) and measure wall time and peak tree RSS.

    Output goes to ``log`` (or is discarded); the last lines are kept in the result for error messages.
    """
    log_handle = open(log, "w", encoding="utf-8") if log else subprocess.DEVNULL
    started = time.perf_counter()
    proc = subprocess.Popen(list(command), env=dict(env) if env is not None else None, cwd=cwd,
                            stdout=log_handle, stderr=subprocess.STDOUT, start_new_session=True)
    watched = psutil.Process(proc.pid)
    peak = 0
    stopped: list[str] = []
    done = threading.Event()

    def poll() -> None:
        nonlocal peak
        while not done.is_set():
            rss = tree_rss(watched)
            peak = max(peak, rss)
            elapsed = time.perf_counter() - started
            if memory_ceiling_bytes and rss > memory_ceiling_bytes and not stopped:
                stopped.append(f"stopped at the memory ceiling of {memory_ceiling_bytes / GIB:.0f} GiB "
                               f"after {elapsed:.0f} s")
                _kill_tree(proc.pid)
            if time_limit_seconds and elapsed > time_limit_seconds and not stopped:
                stopped.append(f"stopped at the time limit of {time_limit_seconds:.0f} s")
                _kill_tree(proc.pid)
            done.wait(interval)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        returncode = proc.wait()
    finally:
        seconds = time.perf_counter() - started
        done.set()
        poller.join()
        if log:
            log_handle.close()
    tail = ""
    if log and Path(log).exists():
        tail = "\n".join(Path(log).read_text(encoding="utf-8", errors="replace").splitlines()[-30:])
    return Measurement(command=" ".join(command), seconds=seconds, peak_rss_bytes=peak, returncode=returncode,
                       stopped=stopped[0] if stopped else None, output_tail=tail)


def _kill_tree(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)  # the command runs in a session of its own: its whole group
    except ProcessLookupError:
        pass
