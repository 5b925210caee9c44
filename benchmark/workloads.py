"""The benchmark's workloads: the sample city at a scale and for a set of report cycles.

Scale 1 is the sample Dortmund (about 600,000 residents, about 100,000 transfer recipients per cycle);
the generator streams every scale in bounded memory (social_monitor.sample_city).
"""

from __future__ import annotations

from dataclasses import dataclass

ALL_CYCLES = (2007, 2012, 2018, 2025)
# The nightly case: a cycle added to W2's. Not one after 2025: the sample city's calibration ends there, so
# a later cycle would repeat 2025's counts exactly and the MSS dynamics (change since the previous cycle) would
# have zero variance. 2022 lies between 2018 and 2025, so the run also has to redo 2025's comparisons.
NEW_CYCLE = 2022


@dataclass(frozen=True)
class Workload:
    name: str
    scale: float
    cycles: tuple[int, ...]
    description: str
    # the pandas peer is tried only up to this scale; beyond it the run would only measure swapping
    pandas: bool = True


WORKLOADS: dict[str, Workload] = {
    "smoke": Workload("smoke", 0.1, (2025,), "a tenth of the sample city, one cycle (test suite)"),
    "W1": Workload("W1", 1, (2025,), "the sample Dortmund, one report cycle"),
    "W2": Workload("W2", 1, ALL_CYCLES, "the sample Dortmund, every cycle 2007 to 2025"),
    "W3": Workload("W3", 30, (2025,), "30 × W1 (a state), one cycle"),
    "W4": Workload("W4", 140, (2025,), "140 × W1 (Germany-sized), one cycle"),
}
# `make benchmark` runs these, and the nightly case after W2
DEFAULT_RUN = ("W1", "W2", "nightly", "W3", "W4")
