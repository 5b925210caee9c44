"""The indicator catalogue is data, and its documentation is generated from it."""

from social_monitor.catalogue import DOCS_PATH, read_catalogue, render_markdown


def test_docs_are_generated_from_the_catalogue():
    assert DOCS_PATH.read_text(encoding="utf-8") == render_markdown(read_catalogue()), "run `make docs`"


def test_every_rate_names_numerator_and_denominator():
    for row in read_catalogue():
        assert row["numerator_measure"], row["indicator_id"]
        if row["unit"] == "%":
            assert row["denominator_measure"] and row["scale"] == "100", row["indicator_id"]
        assert row["direction"] in {"higher_is_worse", "higher_is_better", "neutral"}
