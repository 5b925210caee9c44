"""The sample city: deterministic raw extracts of a synthetic city, from a city folder's sample input.

``generate(out_dir, cycles, seed, scale, city_dir=...)`` writes, per report cycle, the register extract
(Bevölkerungsbestand), the SGB II, SGB XII and AsylbLG recipient files and their manifests, calibrated to
the city's ``sample/`` input (``sample.yml`` names the planner and its files; the Dortmund sample's
calibration is documented in ``config/dortmund/sample/CALIBRATION.md``). Nothing in it is real personal
data.
"""

from social_monitor.sample_city.generator import DEFAULT_SEED, generate, generate_cycle, report_cycles

__all__ = ["DEFAULT_SEED", "generate", "generate_cycle", "report_cycles"]
