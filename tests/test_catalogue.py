"""The indicator catalogue is data, and its documentation is generated from it."""

from social_monitor.catalogue import DOCS_PATH, read_catalogue, render_markdown


def test_docs_are_generated_from_the_catalogue():
    assert DOCS_PATH.read_text(encoding="utf-8") == render_markdown(read_catalogue()), "run `make docs`"


def test_every_row_has_every_column():
    """dbt loads the seed with DuckDB's COPY, which refuses a row with fewer fields than the header (a row
    appended before a column was added needs its trailing commas)."""
    for row in read_catalogue():
        missing = [column for column, value in row.items() if value is None]
        assert not missing, f"indicator_catalogue.csv, {row['indicator_id']}: no field for {', '.join(missing)}"


def test_every_rate_names_numerator_and_denominator():
    for row in read_catalogue():
        if row["change_of_indicator"]:
            continue  # a change of an indicator: below
        assert row["numerator_measure"], row["indicator_id"]
        if row["unit"] == "%":
            assert row["denominator_measure"] and row["scale"] == "100", row["indicator_id"]
        assert row["direction"] in {"higher_is_worse", "higher_is_better", "neutral"}


def test_a_change_of_an_indicator_names_a_rate_and_no_counts():
    """A change of an indicator (change_of_indicator) is in percentage points of a rate in % of the catalogue; it
    names no counts and is not a count's change (change_of, read by the disclosure control)."""
    rows = {row["indicator_id"]: row for row in read_catalogue()}
    changes = [row for row in rows.values() if row["change_of_indicator"]]
    assert {row["indicator_id"] for row in changes} >= {
        "unemployment_rate_change", "long_term_unemployment_rate_change", "transfer_rate_not_unemployed_change",
        "sgb2_rate_age_0_14_change"}
    for row in changes:
        source = rows[row["change_of_indicator"]]
        assert source["unit"] == "%" and not source["change_of_indicator"], row["indicator_id"]
        assert row["unit"] == "Prozentpunkte" and row["scale"] == "1", row["indicator_id"]
        assert not (row["numerator_measure"] or row["denominator_measure"] or row["change_of"]), row["indicator_id"]
        assert row["direction"] == source["direction"], row["indicator_id"]
