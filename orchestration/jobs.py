"""Jobs, the nightly schedule and the sensor that picks up new deliveries."""


import json
from pathlib import Path

import dagster as dg

from orchestration.partitions import REPORT_CYCLES
from social_monitor.deliveries import SOURCES, reference_date_of, scan_manifests
from social_monitor.layouts import load_layouts
from social_monitor.settings import load_settings

RAW = dg.AssetSelection.groups("raw")

ingest_job = dg.define_asset_job(
    "ingest_deliveries",
    selection=RAW,
    description="Load and validate the deliveries of one report cycle into the warehouse's raw schema.",
)

build_marts_job = dg.define_asset_job(
    "build_marts",
    selection=dg.AssetSelection.all() - RAW,
    description="Rebuild the dbt models over every loaded cycle, classify the action areas, publish.",
)

nightly_schedule = dg.ScheduleDefinition(
    name="nightly_build_marts",
    job=build_marts_job,
    cron_schedule="0 2 * * *",
    execution_timezone="Europe/Berlin",
    description="Every night at 02:00: rebuild marts, classification and the published file.",
)


@dg.sensor(
    job=ingest_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Watches the landing folder for delivery manifests (named as the city's delivery layouts say, "
    "e.g. sgb12_<YYYY-12-31>.manifest.json). A new "
    "or changed delivery of a configured report cycle starts an ingest run for that source and cycle; the "
    "nightly schedule then rebuilds the marts. A delivery for a cycle not in city.yml, and a manifest that "
    "cannot be read (each named with its file and field), is skipped with a message; the others are still "
    "picked up.",
)
def new_delivery_sensor(context: dg.SensorEvaluationContext):
    settings = load_settings()
    landing = settings.landing_dir
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    requests, skipped = [], []
    scan = scan_manifests(Path(landing), load_layouts(settings.city_dir)) if landing.exists() else None
    for problem in scan.problems if scan else []:  # a bad manifest is reported; the others go on
        context.log.warning(problem)
        skipped.append(problem)
    for manifest in scan.manifests if scan else []:
        key = manifest.path.name
        if seen.get(key) == manifest.sha256:
            continue
        if manifest.report_cycle not in REPORT_CYCLES:
            skipped.append(f"{key}: report cycle {manifest.report_cycle} is not in city.yml")
            continue
        if manifest.reference_date != reference_date_of(manifest.report_cycle):
            skipped.append(f"{key}: reference date {manifest.reference_date} is not 31 December of a report cycle")
            continue
        seen[key] = manifest.sha256
        requests.append(
            dg.RunRequest(
                run_key=f"{key}:{manifest.sha256}",
                partition_key=str(manifest.report_cycle),
                # the delivery log (and raw.aggregates for an aggregate delivery) records the cycle after the load
                asset_selection=[dg.AssetKey(["raw", manifest.source]), dg.AssetKey(["raw", "deliveries"]),
                                 *([dg.AssetKey(["raw", "aggregates"])] if manifest.source not in SOURCES else [])],
            )
        )
    context.update_cursor(json.dumps(seen, sort_keys=True))
    if not requests:
        return dg.SkipReason("; ".join(skipped) or f"no new delivery in {landing}")
    return requests
