"""The sample city: deterministic raw extracts of a synthetic city shaped like Dortmund.

``generate(out_dir, cycles, seed, scale)`` writes, per report cycle, the register extract
(Bevölkerungsbestand), the SGB II, SGB XII and AsylbLG recipient files and their manifests, calibrated
to the published facts about Dortmund (see ``CALIBRATION.md`` in this folder). Nothing in it is real
personal data.
"""

from social_monitor.sample_city.generator import DEFAULT_CYCLES, DEFAULT_SEED, generate, generate_cycle

__all__ = ["DEFAULT_CYCLES", "DEFAULT_SEED", "generate", "generate_cycle"]
