"""One partition per report cycle (Berichtsjahr), from city.yml."""

import dagster as dg

from social_monitor.settings import load_settings

REPORT_CYCLES = load_settings().config().report_cycles

report_cycle_partitions = dg.StaticPartitionsDefinition([str(cycle) for cycle in REPORT_CYCLES])

# Every asset runs a range of report cycles in one run: the raw assets load each cycle of the range, the
# unpartitioned ones (dbt, classification, publication) once after them. So `dagster asset materialize
# --select '*' --partition-range 2007...2025` is one run, one process, without a daemon.
SINGLE_RUN = dg.BackfillPolicy.single_run()
