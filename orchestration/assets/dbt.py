"""The dbt models (staging → intermediate → marts) and the reference seeds as Dagster assets.

One `dbt build` over every loaded report cycle; the one model that reads every person
(int_base_area_counts) is incremental and recomputes only the cycles whose deliveries changed. dbt tests
become asset checks.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from orchestration.dbt_project import dbt_project
from orchestration.partitions import SINGLE_RUN
from orchestration.resources import PipelineSettings, WarehouseResource
from social_monitor.settings import CityConfig
from social_monitor.storage import storage_problem


class Translator(DagsterDbtTranslator):
    """Groups by layer (reference, staging, intermediate, marts); marts keep their plain names."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "reference"
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else "marts"

    def get_owners(self, dbt_resource_props: Mapping[str, Any]):
        return ["team:social-planning"]

    def get_description(self, dbt_resource_props: Mapping[str, Any]) -> str:
        """The description in the YAML, else the comment that heads the model's SQL (not dbt's "dbt model x")."""
        text = dbt_resource_props.get("description") or _leading_comment(dbt_resource_props.get("raw_code") or "")
        if text and dbt_resource_props["resource_type"] == "seed":  # a CSV file: no SQL to show
            return (f"{text}\n\nReference data: a dbt seed in the warehouse schema reference, from "
                    f"`dbt_project/{dbt_resource_props.get('original_file_path', '')}`.")
        if text and dbt_resource_props["resource_type"] == "model":
            layer = LAYERS.get(self.get_group_name(dbt_resource_props) or "", "")
            text = f"{text}\n\n{layer}".strip()
        return super().get_description({**dbt_resource_props, "description": text})


LAYERS = {
    "staging": "Staging layer (a view in the warehouse schema staging): one raw table, renamed and typed.",
    "intermediate": "Intermediate layer (warehouse schema intermediate, private): the counts and geography "
                    "the marts are built from.",
    "marts": "Mart (a table in the warehouse schema marts): aggregated; published/marts copies it into the "
             "published file.",
}


def _leading_comment(sql: str) -> str:
    """The ``--`` comment lines at the top of a model's SQL, as text (an empty ``--`` line starts a paragraph)."""
    paragraphs = [[]]
    for line in sql.strip().splitlines():
        if not line.strip().startswith("--"):
            break
        text = line.strip()[2:].strip()
        if text:
            paragraphs[-1].append(text)
        else:
            paragraphs.append([])
    return "\n\n".join(" ".join(p) for p in paragraphs if p)


class DbtBuildConfig(dg.Config):
    """Run config of the dbt step. int_base_area_counts recomputes only the report cycles whose deliveries
    changed; after a change of a model's SQL, rebuild every table from scratch with full_refresh."""

    full_refresh: bool = False


@dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project, dagster_dbt_translator=Translator(),
            backfill_policy=SINGLE_RUN)
def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, config: DbtBuildConfig,
               warehouse: WarehouseResource, pipeline: PipelineSettings):
    # ``warehouse``: dbt writes the warehouse, so a run of dbt alone holds the warehouse's run lock too.
    # The city's settings dbt reads (the migration background) come from city.yml, read once here.
    # dbt's unit tests test the models' SQL, not the data: they run in the test suite
    # (tests/test_pipeline.py::test_dbt_unit_tests_pass), not in every production run (2 s of the W1 run).
    dbt_vars = CityConfig.from_file(Path(pipeline.config_path)).dbt_vars_json()
    invocation = dbt.cli(["build", "--exclude-resource-type", "unit_test", "--vars", dbt_vars,
                          *(["--full-refresh"] if config.full_refresh else [])], context=context,
                         raise_on_error=False)
    yield from invocation.stream()
    error = invocation.get_error()
    if error is not None:
        # dbt's message holds DuckDB's: a locked warehouse or a full disk is named in one line
        line = storage_problem(error)
        if line is not None:
            raise dg.Failure(description=line) from error
        raise error
