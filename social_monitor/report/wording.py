"""The report's German: the city's residents term, hyphenation of table headers, the words for a direction.

The indicator catalogue and the disclosure texts write residents as "Einwohnerinnen und Einwohner" (dative
"Einwohnerinnen und Einwohnern"); :func:`residents_wording` puts the city's own term (city.yml
``publisher.residents``) in their place, so the term is set once and the whole report speaks it.
"""

from __future__ import annotations

import functools
import re

import pyphen

from social_monitor.classification.engine import shown_difference

# the catalogue's words for a direction (column ``direction``), as the methods chapter prints them
DIRECTION_DE = {"higher_is_worse": "höherer Wert ungünstiger", "higher_is_better": "höherer Wert günstiger",
                "neutral": "ohne Wertung"}
# the residents term in the catalogue's and the disclosure texts' words (paired or plain, nominative or dative);
# "Einwohnerzahl" and other compounds are not matched (no word boundary after "Einwohner")
RESIDENTS = re.compile(r"\bEinwohnerinnen und Einwohner(n?)\b|\bEinwohner(n?)\b")
# words at least this long get soft hyphens in table headers
HYPHENATE_FROM = 10
SOFT_HYPHEN = "\u00ad"


def residents_wording(text: str, plural: str, dative: str) -> str:
    """``text`` with every residents term in the city's words (``plural``, ``dative``)."""
    return RESIDENTS.sub(lambda m: dative if (m.group(1) or m.group(2)) else plural, text)


@functools.cache
def _dictionary() -> pyphen.Pyphen:
    return pyphen.Pyphen(lang="de_DE")


def hyphenate(text: str) -> str:
    """``text`` with soft hyphens at the German syllable breaks of every long word (a narrow table header
    breaks there, with a hyphen, instead of in the middle of a syllable or not at all)."""
    dictionary = _dictionary()

    def word(match: re.Match) -> str:
        token = match.group(0)
        if len(token) < HYPHENATE_FROM:
            return token
        # keep the hyphens a compound already has ("SGB-II-Quote"): hyphenate each part
        return "-".join(dictionary.inserted(part, hyphen=SOFT_HYPHEN) if len(part) >= 5 else part
                        for part in token.split("-"))

    return re.sub(r"[\w-]+", word, text)


HEADER_CELL = re.compile(r"(<th\b[^>]*>)(.*?)(</th>)", flags=re.S)


def hyphenate_headers(page: str) -> str:
    """Every table header cell of ``page`` (HTML) with soft hyphens in its text (not in its tags)."""
    def cell(match: re.Match) -> str:
        parts = re.split(r"(<[^>]*>)", match.group(2))
        text = "".join(part if part.startswith("<") else hyphenate(part) for part in parts)
        return match.group(1) + text + match.group(3)

    return HEADER_CELL.sub(cell, page)


# what the report prints when an area's value and the city value are equal as shown
EQUAL_DE = "wie die Stadt"


def compare_as_shown(value: float, city: float, decimals: int, direction: str) -> tuple[str, float]:
    """How an area's value compares with the city value as both are printed (rounded to ``decimals``), and the
    difference of the printed values: ``equal`` when they print alike, else ``worse`` or ``better`` by the
    indicator's ``direction`` (the catalogue's), or ``higher``/``lower`` for a neutral one."""
    difference = shown_difference(value, city, decimals)
    if difference == 0:
        return "equal", 0.0
    if direction in ("higher_is_worse", "higher_is_better"):
        worse = difference > 0 if direction == "higher_is_worse" else difference < 0
        return ("worse" if worse else "better"), difference
    return ("higher" if difference > 0 else "lower"), difference
