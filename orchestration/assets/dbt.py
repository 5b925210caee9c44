"""The dbt models (staging → intermediate → marts) and the reference seeds as Dagster assets.

One `dbt build` over every loaded report cycle; the one model that reads every person
(int_unterbezirk_counts) is incremental and recomputes only the cycles whose deliveries changed. dbt tests
become asset checks.
"""


from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from orchestration.dbt_project import dbt_project
from orchestration.partitions import SINGLE_RUN


class Translator(DagsterDbtTranslator):
    """Groups by layer (reference, staging, intermediate, marts); marts keep their plain names."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "reference"
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else "marts"

    def get_owners(self, dbt_resource_props: Mapping[str, Any]):
        return ["team:social-planning"]


class DbtBuildConfig(dg.Config):
    """Run config of the dbt step. int_unterbezirk_counts recomputes only the report cycles whose deliveries
    changed; after a change of a model's SQL, rebuild every table from scratch with full_refresh."""

    full_refresh: bool = False


@dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project, dagster_dbt_translator=Translator(),
            backfill_policy=SINGLE_RUN)
def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, config: DbtBuildConfig):
    yield from dbt.cli(["build", *(["--full-refresh"] if config.full_refresh else [])], context=context).stream()
