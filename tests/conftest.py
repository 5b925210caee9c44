"""Hypothesis profiles for the generated-input tests.

The default profile keeps the normal suite within minutes on a busy 2-core machine; a long run tries more:
``SOCIAL_MONITOR_HYPOTHESIS_EXAMPLES=2000 make test``. No deadline (a loaded machine is slow, not wrong);
derandomised, so a failure in CI is reproduced by the same command.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXAMPLES_ENV = "SOCIAL_MONITOR_HYPOTHESIS_EXAMPLES"

settings.register_profile(
    "social-monitor",
    max_examples=int(os.environ.get(EXAMPLES_ENV, "0") or 0) or 60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
settings.load_profile("social-monitor")
