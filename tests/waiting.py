"""How the tests wait: on a condition, with one generous ceiling, never on a fixed delay.

A loaded 2-core machine (the suite's two workers, other jobs) is slow, not wrong: a server may take minutes to
start, a run several times its usual time. So a test waits for what it needs (a server answering, a process
ready, a run finished) and fails early when that can no longer happen (the process died), and gives up only
after ``CEILING_SECONDS``: the point where a step is hung, not slow. It is never a timing expectation.
``SOCIAL_MONITOR_TEST_CEILING_SECONDS`` moves it (e.g. higher on a very slow CI runner).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

CEILING_SECONDS = float(os.environ.get("SOCIAL_MONITOR_TEST_CEILING_SECONDS", "") or 1800)

T = TypeVar("T")


def wait_for(condition: Callable[[], T | None], what: str, *, still_possible: Callable[[], str | None] | None = None,
             ceiling: float = CEILING_SECONDS, poll: float = 1.0) -> T:
    """Call ``condition`` until it returns something truthy, and return that. ``still_possible`` returns a
    reason when waiting is pointless (a process exited): the wait fails at once with it."""
    began = time.monotonic()
    while True:
        result = condition()
        if result:
            return result
        if still_possible is not None:
            reason = still_possible()
            if reason:
                raise AssertionError(f"{what}: {reason}")
        if time.monotonic() - began > ceiling:
            raise AssertionError(f"{what}: not after {ceiling:.0f} s (SOCIAL_MONITOR_TEST_CEILING_SECONDS)")
        time.sleep(poll)
