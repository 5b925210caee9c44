"""Equal-work DuckDB baseline: the pipeline's ingest and marts in DuckDB alone, as one standalone script.

    python benchmark/baselines/equal_work.py --landing DIR --seeds DIR --cycles 2007 2012 --out FILE.parquet
        [--warehouse FILE.duckdb] [--threads N] [--memory-limit 2GB]

It does the SAME work as the pipeline (issue 14), not the least work that gives the numbers:
- every delivery of every cycle (the four person-level sources, the unemployment extract and the six aggregate
  deliveries of the sample city's layouts, config/dortmund/deliveries.yml: file name, format, encoding,
  separator, headers, date format and codes written out below as a statistics office would for its own files):
  the manifest's row count and SHA-256, the header, every column read and parsed into its type, the city's
  codes mapped to the contract's;
- the contracts' row checks (schemas/raw.py, schemas/aggregates.py): not-null, allowed codes, ranges, lengths,
  patterns, dates plausible against the reference date, the area key a key of the geography (the sample city's
  areas have no validity, so every key is valid in every cycle), key uniqueness on the delivered key, and for
  an aggregate delivery a row for every area of its level and every measure. A problem stops the script with
  the file, line and column (never the value);
- person and household keys replaced by HMAC-SHA256 under the key in SOCIAL_MONITOR_PSEUDONYM_KEY (else the
  pipeline's marked development key), computed in DuckDB with the pipeline's expression (inner and outer pad);
- the typed rows with their lineage (file, line, cycle, reference date) written to a DuckDB file (--warehouse;
  default: --out with the suffix .duckdb), in tables shaped like the pipeline's raw.<source>;
- then equal_work.sql: the counts and every indicator of the catalogue, written to --out in the shape of
  marts.area_indicators.

Not done (said in docs/benchmark-notes.md): a geography reform (the sample city has none, so counts by area key
equal the pipeline's harmonised ones), the quarantine policy (a bad row stops the script, as the pipeline's
default policy "fail" does), the rejected-rows table and the published file with disclosure control.

Only the standard library and duckdb: no project imports.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

SQL = Path(__file__).with_name("equal_work.sql")
KEY_ENV = "SOCIAL_MONITOR_PSEUDONYM_KEY"
DEVELOPMENT_KEY = "DEVELOPMENT-ONLY-not-secret-set-SOCIAL_MONITOR_PSEUDONYM_KEY"
DATE_FORMAT = "%d.%m.%Y"
SEX = {"m": "m", "w": "w", "d": "d", "o": "o"}
NATIONALITY = {c: c for c in ("deutsch", "EU", "Drittstaat", "staatenlos/ungeklärt")}
MAX_AGE = 120

# The deliveries: (table, file name pattern, encoding (None: Parquet), [(header, column, kind, check)]).
# kind: text | date | int16 | int64 | a dict of the city's codes onto the contract's. check: the row check of the
# contract in SQL over the typed columns (ref = the reference date), True where the row passes.
PERSON_KEY = "person_key is not null and length(person_key) between 1 and 64"
HOUSEHOLD_KEY = "household_key is not null and length(household_key) between 1 and 64"
BORN = (f"birth_date is not null and birth_date <= getvariable('ref') "
        f"and birth_date > getvariable('ref') - interval {MAX_AGE + 1} year")
AREA_KEY = "unterbezirk_id in (select area_id from _keys where area_level = 'unterbezirk')"


def _literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def coded(column: str, codes: dict[str, str], nullable: bool = False) -> str:
    allowed = ", ".join(_literal(c) for c in sorted(set(codes.values())))
    return f"{column} in ({allowed})" + (f" or {column} is null" if nullable else "")


PERSON_SOURCES = {
    "register": ("bevoelkerung_{date}.csv", "cp1252", [
        ("Personen_ID", "person_key", "text", PERSON_KEY),
        ("Geburtsdatum", "birth_date", "date", BORN),
        ("Geschlecht", "sex", SEX, coded("sex", SEX)),
        ("Staatsangehörigkeit", "nationality_group", NATIONALITY, coded("nationality_group", NATIONALITY)),
        ("Wohnungsstatus", "residence_type", {"H": "H", "N": "N"}, "residence_type in ('H', 'N')"),
        ("Zuzugsdatum", "move_in_date", "date",
         "move_in_date is null or (move_in_date >= birth_date and move_in_date <= getvariable('ref'))"),
        ("Unterbezirk", "unterbezirk_id", "text", AREA_KEY),
        ("Straßenschlüssel", "street_key", "text", "regexp_full_match(street_key, '[0-9]{5}')"),
        ("Hausnummer", "house_number", "text", "length(house_number) between 1 and 8"),
        ("Staatsangehörigkeit_2", "second_nationality_group", NATIONALITY,
         coded("second_nationality_group", NATIONALITY, nullable=True)),
        ("Geburtsland", "birth_country", {c: c for c in ("Inland", "Ausland", "unbekannt")},
         "birth_country in ('Ausland', 'Inland', 'unbekannt')"),
        ("Haushalts_ID", "household_key", "text", HOUSEHOLD_KEY),
    ]),
    "sgb2": ("sgb2_{date}.parquet", None, [
        ("Personen_ID", "person_key", "text", PERSON_KEY),
        ("BG_Nummer", "household_key", "text", HOUSEHOLD_KEY),
        ("Alter", "age", "int16", "age between 0 and 67"),
        ("Unterbezirk", "unterbezirk_id", "text", AREA_KEY),
    ]),
    "sgb12": ("sgb12_{date}.csv", "utf-8", [
        ("Personen_ID", "person_key", "text", PERSON_KEY),
        ("Leistungsart", "benefit_kind", {"HLU": "HLU", "GSI": "GSI"}, "benefit_kind in ('GSI', 'HLU')"),
        ("Geburtsdatum", "birth_date", "date", BORN),
        ("Unterbezirk", "unterbezirk_id", "text", AREA_KEY),
    ]),
    "asylblg": ("asylblg_{date}.csv", "utf-8", [
        ("Personen_ID", "person_key", "text", PERSON_KEY),
        ("Geburtsdatum", "birth_date", "date", BORN),
        ("Geschlecht", "sex", SEX, coded("sex", SEX)),
        ("Unterbezirk", "unterbezirk_id", "text", AREA_KEY),
    ]),
    "unemployment": ("arbeitslose_{date}.csv", "utf-8", [
        ("Personen_ID", "person_key", "text", PERSON_KEY),
        ("Rechtskreis", "legal_basis", {"SGB II": "SGB II", "SGB III": "SGB III"},
         "legal_basis in ('SGB II', 'SGB III')"),
        # on or before the reference date and at most age - 14 years before it
        ("Arbeitslos_seit", "unemployed_since", "date",
         "unemployed_since is not null and unemployed_since <= getvariable('ref') and unemployed_since >= "
         "getvariable('ref') - to_years(greatest(cast(age as integer) - 14, 0))"),
        ("Alter", "age", "int16", "age between 15 and 67"),
        ("Geschlecht", "sex", SEX, coded("sex", SEX)),
        ("Unterbezirk", "unterbezirk_id", "text", AREA_KEY),
    ]),
}
# the contracts' column order of raw.<table> (lineage first), and the keys that are stored as pseudonyms
PSEUDONYMISED = ("person_key", "household_key")

# Aggregate deliveries: (id, file name pattern, encoding (None: Parquet), level, headers (area, measure, value),
# {the office's measure code: (measure id, additive)})
AGGREGATES = [
    ("schuleingang", "schuleingang_{date}.csv", "cp1252", "statistischer_bezirk",
     ("Statistischer_Bezirk", "Merkmal", "Anzahl"),
     {"UNTERSUCHT": ("school_entry_examined", True), "NORMALGEWICHT": ("school_entry_normal_weight", True)}),
    ("schuluebergaenge", "uebergaenge_{date}.csv", "utf-8", "statistischer_bezirk",
     ("StatBez", "Schulform", "Schueler"),
     {"UE_GESAMT": ("pupils_transition", True), "UE_GYM": ("pupils_transition_gymnasium", True)}),
    ("hilfen_zur_erziehung", "hze_{date}.csv", "utf-8", "sozialraum", ("Sozialraum", "Hilfeart", "Faelle"),
     {"HZE": ("youth_welfare_cases", True)}),
    ("beschaeftigte", "svb_wohnort_{date}.parquet", None, "unterbezirk", ("Unterbezirk", "Merkmal", "Wert"),
     {"SVB_WO": ("employees_residence", True)}),
    ("einkommen", "einkommen_{date}.csv", "utf-8", "statistischer_bezirk", ("StatBez", "Kennzahl", "Wert"),
     {"EK_INDEX": ("income_index", False)}),
    ("wohnungen", "wohnungen_{date}.csv", "utf-8", "unterbezirk", ("Unterbezirk", "Merkmal", "Anzahl"),
     {"WHG": ("dwellings", True), "LEER": ("dwellings_vacant", True)}),
]
MAX_AGGREGATE_VALUE = 10**12
UNDEFINED_IN_LATIN1 = re.compile(rb"[\x80-\x9f]")  # cp1252 differs from latin-1 only in these bytes


class DeliveryError(RuntimeError):
    pass


SECONDS: dict[str, float] = {}  # where the time goes, by step (printed at the end)


@contextmanager
def timed(step: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        SECONDS[step] = SECONDS.get(step, 0.0) + time.perf_counter() - started


def hmac_sql(secret: bytes, expression: str) -> str:
    """HMAC-SHA256 of a text expression in DuckDB, as 64 hex characters: sha256(opad || sha256(ipad || text))."""
    key = secret if len(secret) <= 64 else hashlib.sha256(secret).digest()
    key = key.ljust(64, b"\0")
    inner = bytes(b ^ 0x36 for b in key).hex()
    outer = bytes(b ^ 0x5C for b in key).hex()
    return f"sha256(unhex('{outer}') || unhex(sha256(unhex('{inner}') || encode({expression}))))"


def pseudonym_key() -> bytes:
    value = os.environ.get(KEY_ENV, "")
    if value and len(value) < 16:
        raise SystemExit(f"{KEY_ENV} must be at least 16 characters long")
    return (value or DEVELOPMENT_KEY).encode()


# --- one delivery ------------------------------------------------------------------------------------------------


def check_file(path: Path, encoding: str | None) -> tuple[bool, int]:
    """The manifest's checksum over the file in one pass; for a cp1252 file also whether it holds a byte that
    latin-1 reads otherwise (then it is read from a UTF-8 copy). Returns whether such a copy is needed and the
    rows the manifest announces."""
    manifest_path = path.with_name(path.name.rsplit(".", 1)[0] + ".manifest.json")
    if not path.is_file() or not manifest_path.is_file():
        raise DeliveryError(f"{path.name}: the file or its manifest {manifest_path.name} is missing")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    digest, transcode = hashlib.sha256(), False
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
            if encoding == "cp1252" and not transcode and UNDEFINED_IN_LATIN1.search(chunk):
                transcode = True
    if digest.hexdigest() != manifest["sha256"]:
        raise DeliveryError(f"{path.name}: SHA-256 checksum does not match the manifest's")
    return transcode, int(manifest["rows"])


def text_relation(con: duckdb.DuckDBPyConnection, path: Path, encoding: str | None, headers: list[str],
                  tmp: Path) -> tuple[str, int]:
    """The delivered file with every column of the layout as text, under the layout's headers, in file order,
    and the rows its manifest announces."""
    with timed("checksum"):
        transcode, manifest_rows = check_file(path, encoding)
    if encoding is None:
        present = [row[0] for row in con.execute(f"describe select * from read_parquet({_literal(path)})").fetchall()]
        if present != headers:
            raise DeliveryError(f"{path.name}: columns {present}, expected {headers}")
        return ("(select " + ", ".join(f'cast("{h}" as varchar) as "{h}"' for h in headers)
                + f" from read_parquet({_literal(path)}))"), manifest_rows
    read_path, duck_encoding = path, "utf-8"
    if encoding == "cp1252":
        duck_encoding = "latin-1"
        if transcode:  # DuckDB reads utf-8 and latin-1: a file with cp1252's own bytes is read from a UTF-8 copy
            read_path, duck_encoding = tmp / (path.name + ".utf8"), "utf-8"
            with open(path, encoding="cp1252", newline="") as src, open(read_path, "w", encoding="utf-8",
                                                                         newline="") as dst:
                while chunk := src.read(1 << 22):
                    dst.write(chunk)
    with open(read_path, "rb") as handle:
        header = handle.readline().rstrip(b"\r\n").decode("latin-1" if duck_encoding == "latin-1" else "utf-8")
    if header.split(";") != headers:
        raise DeliveryError(f"{path.name}, line 1: header {header.split(';')}, expected {headers}")
    spec = "{" + ", ".join(f"{_literal(h)}: 'VARCHAR'" for h in headers) + "}"
    return (f"read_csv({_literal(read_path)}, delim = ';', header = true, columns = {spec}, auto_detect = false, "
            f"quote = '\"', escape = '\"', encoding = {_literal(duck_encoding)})"), manifest_rows


def typed_select(columns: list[tuple[str, str, object, str]], text: str) -> str:
    """Every column trimmed (empty = null) and parsed into its type, codes mapped; ``_unparsed``: the headers
    of the non-empty values that did not parse or are no code of the layout (null when all did)."""
    trimmed, parsed, failed = [], [], []
    for i, (header, column, kind, _) in enumerate(columns):
        value = f"_v{i}"
        trimmed.append(f'nullif(trim("{header}"), \'\') as {value}')
        if isinstance(kind, dict):
            cases = " ".join(f"when {_literal(city)} then {_literal(code)}" for city, code in kind.items())
            expr = f"case {value} {cases} end"
        elif kind == "date":
            date = f"cast(try_strptime({value}, '{DATE_FORMAT}') as date)"
            expr = f"case when year({date}) between 1 and 9999 then {date} end"
        elif kind in ("int16", "int64"):
            duck_type = {"int16": "smallint", "int64": "bigint"}[kind]
            expr = (f"case when regexp_full_match({value}, '[+-]?[0-9]+([.]0+)?') "
                    f"then try_cast(try_cast({value} as double) as {duck_type}) end")
        else:
            parsed.append(f"{value} as {column}")
            continue
        parsed.append(f"{expr} as {column}")
        parsed.append(value)
        failed.append((f"{column} is null and {value} is not null", header))
    listed = ", ".join(f"case when {condition} then {_literal(header)} end" for condition, header in failed)
    any_failed = " or ".join(f"({condition})" for condition, _ in failed) or "false"
    names = [column for _, column, _, _ in columns]
    return (f"select {', '.join(names)}, case when {any_failed} then list_filter([{listed}], h -> h is not null) "
            f"end as _unparsed from (select {', '.join(parsed)} from (select {', '.join(trimmed)} from {text}))")


def check_rows(con: duckdb.DuckDBPyConnection, name: str, checks: list[tuple[str, str]], first_line: int,
               unique: list[str]) -> None:
    """Every row check at once over the typed rows (_typed), then key uniqueness: the first failing line of each
    failing check, by header (values are never shown)."""
    lines = ["min(rowid) filter (where _unparsed is not null)"]
    lines += [f"min(rowid) filter (where not coalesce({check}, false))" for _, check in checks]
    first = con.execute(f"select {', '.join(lines)} from _typed").fetchone()
    problems = []
    if first[0] is not None:
        problems.append(f"line {first[0] + first_line}: a value that is not of its column's type or no code")
    for (header, _), row in zip(checks, first[1:], strict=True):
        if row is not None:
            problems.append(f"line {row + first_line}, column {header}: fails the contract's check")
    key = ", ".join(unique)
    duplicates = con.execute(f"select count(*) from (select {key} from _typed group by all having count(*) > 1)"
                             ).fetchone()[0]
    if duplicates:
        problems.append(f"{duplicates} key(s) of ({key}) occur more than once")
    if problems:
        raise DeliveryError(f"{name}: " + "; ".join(problems))


def load_person_delivery(con: duckdb.DuckDBPyConnection, table: str, landing: Path, cycle: int, tmp: Path,
                         secret: bytes) -> int:
    pattern, encoding, columns = PERSON_SOURCES[table]
    path = landing / pattern.format(date=f"{cycle}-12-31")
    text, announced = text_relation(con, path, encoding, [c[0] for c in columns], tmp)
    con.execute(f"set variable ref = date '{cycle}-12-31'")
    with timed("read and parse"):
        con.execute(f"create or replace temp table _typed as {typed_select(columns, text)}")
    first_line = 1 if encoding is None else 2
    rows = con.execute("select count(*) from _typed").fetchone()[0]
    if rows != announced or rows == 0:
        raise DeliveryError(f"{path.name}: {rows} data rows, its manifest announces {announced}")
    with timed("row checks and uniqueness"):
        check_rows(con, path.name, [(header, check) for header, _, _, check in columns], first_line,
                   ["person_key"])
    selected = ", ".join(hmac_sql(secret, column) + f" as {column}" if column in PSEUDONYMISED else column
                         for _, column, _, _ in columns)
    # the line is stored with every row, so the insert need not keep the file's order (it may run in parallel)
    con.execute("set preserve_insertion_order = false")
    with timed("HMAC and insert"):
        con.execute(f"insert into raw.{table} select {_literal(path.name)}, rowid + {first_line}, {cycle}, "
                    f"date '{cycle}-12-31', {selected} from _typed")
    con.execute("set preserve_insertion_order = true")  # the next delivery's rowid is its line again
    return rows


def load_aggregate_delivery(con: duckdb.DuckDBPyConnection, delivery: tuple, landing: Path, cycle: int,
                            tmp: Path) -> int:
    name, pattern, encoding, level, headers, measures = delivery
    path = landing / pattern.format(date=f"{cycle}-12-31")
    text, announced = text_relation(con, path, encoding, list(headers), tmp)
    codes = {code: measure for code, (measure, _) in measures.items()}
    columns = [(headers[0], "area_id", "text",
                f"area_id in (select area_id from _keys where area_level = {_literal(level)})"),
               (headers[1], "measure", codes, "measure is not null"),
               (headers[2], "value", "int64", f"value between 0 and {MAX_AGGREGATE_VALUE}")]
    con.execute(f"create or replace temp table _typed as {typed_select(columns, text)}")
    first_line = 1 if encoding is None else 2
    rows = con.execute("select count(*) from _typed").fetchone()[0]
    if rows != announced or rows == 0:
        raise DeliveryError(f"{path.name}: {rows} data rows, its manifest announces {announced}")
    check_rows(con, path.name, [(header, check) for header, _, _, check in columns], first_line,
               ["area_id", "measure"])
    # a row for every area of the level and every measure (the sample city's layouts declare no gaps)
    missing = con.execute(
        f"select count(*) from (select area_id from _keys where area_level = {_literal(level)}) "
        f"cross join (select unnest([{', '.join(_literal(m) for m in codes.values())}]) as measure) "
        "anti join _typed using (area_id, measure)").fetchone()[0]
    if missing:
        raise DeliveryError(f"{path.name}: {missing} (area, measure) rows of level {level} missing")
    additive = ", ".join(f"({_literal(measure)}, {str(add).lower()})" for measure, add in measures.values())
    con.execute(f"insert into raw.aggregates select {_literal(path.name)}, rowid + {first_line}, {cycle}, "
                f"date '{cycle}-12-31', {_literal(name)}, {_literal(level)}, a.additive, area_id, measure, value "
                f"from _typed join (values {additive}) as a(measure, additive) using (measure)")
    return rows


RAW_TABLES = {
    "register": "person_key varchar, birth_date date, sex varchar, nationality_group varchar, residence_type varchar, "
                "move_in_date date, unterbezirk_id varchar, street_key varchar, house_number varchar, "
                "second_nationality_group varchar, birth_country varchar, household_key varchar",
    "sgb2": "person_key varchar, household_key varchar, age smallint, unterbezirk_id varchar",
    "sgb12": "person_key varchar, benefit_kind varchar, birth_date date, unterbezirk_id varchar",
    "asylblg": "person_key varchar, birth_date date, sex varchar, unterbezirk_id varchar",
    "unemployment": "person_key varchar, legal_basis varchar, unemployed_since date, age smallint, sex varchar, "
                    "unterbezirk_id varchar",
    "aggregates": "delivery varchar, area_level varchar, additive boolean, area_id varchar, measure varchar, "
                  "value bigint",
}
LINEAGE = "source_file varchar, source_line bigint, report_cycle integer, reference_date date, "


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, required=True, help="folder with the delivered files")
    parser.add_argument("--seeds", type=Path, required=True, help="dbt_project/seeds (reference/, catalogue/)")
    parser.add_argument("--cycles", type=int, nargs="+", required=True, help="report cycles, e.g. 2007 2012")
    parser.add_argument("--out", type=Path, required=True, help="output Parquet file (the indicator mart)")
    parser.add_argument("--warehouse", type=Path, help="DuckDB file of the typed rows (default: --out as .duckdb)")
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: DuckDB's)")
    parser.add_argument("--memory-limit", help="DuckDB memory_limit, e.g. 2GB (default: DuckDB's)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    secret = pseudonym_key()
    out = args.out.resolve()
    warehouse = (args.warehouse or out.with_suffix(".duckdb")).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    warehouse.unlink(missing_ok=True)
    cycles = sorted(set(args.cycles))
    con = duckdb.connect(str(warehouse))
    if args.threads:
        con.execute(f"set threads = {int(args.threads)}")
    if args.memory_limit:
        con.execute(f"set memory_limit = {_literal(args.memory_limit)}")
    # literals, not bound parameters: binding Python values makes the duckdb module import pandas (~1 s)
    con.execute(f"set variable seeds = {_literal(args.seeds.resolve())}")
    con.execute(f"set variable cycles = [{', '.join(map(str, cycles))}]::integer[]")
    con.execute(f"set variable out = {_literal(out)}")
    con.execute("create schema raw")
    for table, columns in RAW_TABLES.items():
        con.execute(f"create table raw.{table} ({LINEAGE}{columns})")
    # the area keys of every level (the sample city's areas carry no validity: every key is valid every cycle)
    reference = f"{args.seeds.resolve()}/reference"
    con.execute(f"""create temp table _keys as
        select 'unterbezirk' as area_level, unterbezirk_id as area_id from read_csv('{reference}/unterbezirke.csv',
            header = true, all_varchar = true)
        union all select 'statistischer_bezirk', bezirk_id from read_csv('{reference}/statistische_bezirke.csv',
            header = true, all_varchar = true)
        union all select 'sozialraum', sozialraum_id from read_csv('{reference}/sozialraeume.csv', header = true,
            all_varchar = true)
        union all select 'stadtbezirk', stadtbezirk_id from read_csv('{reference}/stadtbezirke.csv', header = true,
            all_varchar = true)""")
    rows = 0
    try:
        with tempfile.TemporaryDirectory(prefix="equal-work-") as tmp:
            for cycle in cycles:
                for table in PERSON_SOURCES:
                    rows += load_person_delivery(con, table, args.landing.resolve(), cycle, Path(tmp), secret)
                for delivery in AGGREGATES:
                    rows += load_aggregate_delivery(con, delivery, args.landing.resolve(), cycle, Path(tmp))
    except DeliveryError as exc:
        print(f"equal_work: delivery refused: {exc}", file=sys.stderr)
        return 2
    con.execute("drop table _typed")
    loaded = time.perf_counter()
    with timed("indicators"):
        con.execute(SQL.read_text(encoding="utf-8"))
    with timed("close"):
        con.close()
    print(f"equal_work: {rows} rows loaded into {warehouse} in {loaded - started:.2f} s, indicators -> {out} in "
          f"{time.perf_counter() - loaded:.2f} s; by step: "
          + ", ".join(f"{step} {seconds:.2f} s" for step, seconds in SECONDS.items()), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
