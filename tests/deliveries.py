"""Small hand-made deliveries for tests: rows by German header, written in the source's real format."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from social_monitor.deliveries import reference_date_of, write_manifest
from social_monitor.layouts import load_layouts
from social_monitor.settings import CITIES_DIR

# the delivery layouts of the Dortmund sample city, which the hand-made deliveries of the tests follow: the
# person-level sources here, the aggregate deliveries of partner offices (tests/test_aggregates.py) apart
ALL_LAYOUTS = load_layouts(CITIES_DIR / "dortmund")
LAYOUTS = {name: layout for name, layout in ALL_LAYOUTS.items() if not layout.is_aggregate}
AGGREGATE_LAYOUTS = {name: layout for name, layout in ALL_LAYOUTS.items() if layout.is_aggregate}


def write_delivery(folder: Path, source_name: str, cycle: int, rows: list[dict[str, object]],
                   *, text: str | None = None) -> Path:
    """Write one delivery and its manifest; ``text`` replaces the generated CSV body (for bad files)."""
    source = LAYOUTS[source_name]
    folder.mkdir(parents=True, exist_ok=True)
    ref = reference_date_of(cycle)
    path = folder / source.file_name(ref)
    headers = list(source.file_columns)
    if source.file_format == "parquet":
        columns = {h: [row.get(h) for row in rows] for h in headers}
        types = {h: (pa.int16() if h == "Alter" else pa.string()) for h in headers}
        pq.write_table(pa.table({h: pa.array(v, type=types[h]) for h, v in columns.items()}), path)
    else:
        if text is None:
            lines = [";".join(headers)] + [";".join(_cell(row.get(h)) for h in headers) for row in rows]
            text = "\n".join(lines) + "\n"
        path.write_bytes(text.encode(source.encoding))
    write_manifest(path, source, ref, len(rows))
    return path


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.strftime("%d.%m.%Y")
    return str(value)


def person(key: str, born: str, ub: str, *, sex="w", nationality="deutsch", residence="H", moved=None,
           second_nationality=None, birth_country="Inland", household=None) -> dict:
    return {"Personen_ID": key, "Geburtsdatum": born, "Geschlecht": sex, "Staatsangehörigkeit": nationality,
            "Wohnungsstatus": residence, "Zuzugsdatum": moved or born, "Unterbezirk": ub,
            "Straßenschlüssel": "04711", "Hausnummer": "12a", "Staatsangehörigkeit_2": second_nationality,
            "Geburtsland": birth_country, "Haushalts_ID": household or f"HH-{key}"}
