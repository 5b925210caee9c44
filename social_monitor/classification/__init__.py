"""Classification of areas per report cycle (plain Python, no Dagster)."""

from social_monitor.classification.action_areas import (
    ActionAreaResult,
    ActionAreaRule,
    RuleError,
    classify_action_areas,
)
from social_monitor.classification.warehouse import classify_in_warehouse

__all__ = ["ActionAreaResult", "ActionAreaRule", "RuleError", "classify_action_areas", "classify_in_warehouse"]
