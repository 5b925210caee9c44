"""Reference geography the raw contracts check area codes against.

The single source of truth is the dbt seed in ``dbt_project/seeds/reference/``: a city that swaps in its
own geography changes those files and the contracts follow.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

REFERENCE_DIR = Path(__file__).resolve().parent.parent / "dbt_project" / "seeds" / "reference"


def read_reference(name: str) -> list[dict[str, str]]:
    """Rows of one reference seed (``stadtbezirke``, ``statistische_bezirke``, ``unterbezirke``, …)."""
    with open(REFERENCE_DIR / f"{name}.csv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@cache
def unterbezirk_codes() -> tuple[str, ...]:
    """All valid Unterbezirk codes (three digits, the first two are the statistischer Bezirk)."""
    return tuple(row["unterbezirk_id"] for row in read_reference("unterbezirke"))
