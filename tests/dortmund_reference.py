"""The Dortmund sample's geography (config/dortmund/geography/, read by ``social_monitor.geography``) in the shape
the Dortmund sample's tests compare with: one table per Dortmund level with Dortmund's column names. The
pipeline, the generator and the geometry read the geography generically; only these tests speak Dortmund."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from social_monitor.geography import load_geography
from social_monitor.settings import DEFAULT_CITY, city_dir

# table -> (level, id column, name column, parent id column, grouping columns)
TABLES = {
    "stadtbezirke": ("stadtbezirk", "stadtbezirk_id", "stadtbezirk_name", None),
    "statistische_bezirke": ("statistischer_bezirk", "bezirk_id", "bezirk_name", "stadtbezirk_id"),
    "sozialraeume": ("sozialraum", "sozialraum_id", "sozialraum_name", None),
    "unterbezirke": ("unterbezirk", "unterbezirk_id", "unterbezirk_name", "bezirk_id"),
}


@cache
def read_reference(name: str, folder: Path | None = None) -> tuple[dict[str, str], ...]:
    """Rows of one of the sample city's levels (``unterbezirke``, ``statistische_bezirke``, ``sozialraeume``,
    ``stadtbezirke``): id, name, parent id (if any), the Sozialraum of an Unterbezirk, and the status columns."""
    level, id_column, name_column, parent_column = TABLES[name]
    geography = load_geography(folder or city_dir(DEFAULT_CITY))
    rows = []
    for area in geography.areas_of(level):
        row = {id_column: area.area_id, name_column: area.area_name}
        if parent_column:
            row[parent_column] = area.parent_id
        row.update({f"{grouping}_id": key for grouping, key in area.groups.items()})
        row.update(area.status)
        rows.append(row)
    return tuple(rows)
