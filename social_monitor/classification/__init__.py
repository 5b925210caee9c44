"""Classification of areas per report cycle (plain Python, no Dagster).

- ``methods``: classification methods as configuration (shipped ones in ``methods/*.yml``);
- ``engine``: ``classify(table, method)``, the one function every method runs through;
- ``tables``: reading any indicator table (CSV/Parquet, long/wide) and writing results;
- ``action_areas``: Dortmund's action areas with their Quartiere, for the report;
- ``warehouse``: running the configured methods on the pipeline's own marts.
"""

from social_monitor.classification.action_areas import (
    ActionAreaResult,
    ActionAreaRule,
    RuleError,
    classify_action_areas,
)
from social_monitor.classification.engine import Classification, DataError, classify
from social_monitor.classification.methods import Method, MethodError, load_method, parse_method, shipped_methods
from social_monitor.classification.warehouse import classify_in_warehouse

__all__ = [
    "ActionAreaResult", "ActionAreaRule", "Classification", "DataError", "Method", "MethodError", "RuleError",
    "classify", "classify_action_areas", "classify_in_warehouse", "load_method", "parse_method", "shipped_methods",
]
