"""One partition per report cycle (Berichtsjahr), from config/city.yml."""

import dagster as dg

from social_monitor.settings import load_settings

REPORT_CYCLES = load_settings().config().report_cycles

report_cycle_partitions = dg.StaticPartitionsDefinition([str(cycle) for cycle in REPORT_CYCLES])
