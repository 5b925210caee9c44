"""The Dagster code location: every asset, check, job, schedule and sensor of the pipeline."""

import dagster as dg

from orchestration.assets.classification import action_areas, area_classifications
from orchestration.assets.dbt import dbt_models
from orchestration.assets.exports import published_exports
from orchestration.assets.publish import published_marts
from orchestration.assets.raw import raw_assets
from orchestration.assets.reference import geography
from orchestration.assets.report import report_bericht
from orchestration.checks import checks
from orchestration.jobs import build_marts_job, ingest_job, new_delivery_sensor, nightly_schedule
from orchestration.resources import build_resources

defs = dg.Definitions(
    assets=[*raw_assets, geography, dbt_models, action_areas, area_classifications, published_marts, published_exports,
            report_bericht],
    asset_checks=checks,
    jobs=[ingest_job, build_marts_job],
    schedules=[nightly_schedule],
    sensors=[new_delivery_sensor],
    resources=build_resources(),
    # Every multiprocess step re-imports the code location (seconds each on 2 cores): run in process.
    executor=dg.in_process_executor,
)
