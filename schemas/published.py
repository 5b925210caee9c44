"""Contracts of the published marts: the only tables BI tools see.

Every published table must match its model exactly (``strict``): a column that is not in the contract
(a person key, say) fails the publication before the file is swapped in. All tables are aggregates.

The contracts are also the data dictionary of the published file: every table carries a German title,
description and Excel sheet name (``Config``), every column a German header and description
(``metadata={"de": …, "description_de": …}``). ``data_dictionary()`` returns them for the Excel export
(``social_monitor/exports.py``) and the dbt docs of the published file (``social_monitor/published_docs.py``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import pandera.polars as pa
import polars as pl

from social_monitor.disclosure import CITY_ID, DisclosureRule

# columns naming a level: their values must be levels of the city's geography (published table area_levels),
# checked at validation time (``with_area_levels``), not fixed here
LEVEL_COLUMNS = ("area_level", "parent_level", "grouped_level", "container_level")
CHANGES = ["first_cycle", "kept", "new", "released", "not_action_area"]
FLAG_CHANGES = ["first_cycle", "kept", "new", "released", "not_flagged"]
CLASS_CHANGES = ["no_previous", "same", "better", "worse"]
# the report's topic fields (Themenfelder) and target groups (Zielgruppen); every catalogue row names one topic
TOPICS = ["Demografie", "Erwerbstätigkeit und Transferleistungen", "Bildung und Jugend", "Gesundheit", "Wohnen"]
TARGET_GROUPS = ["Ältere Menschen", "Zugewanderte", "Menschen mit Behinderung", "Kinder und Jugendliche"]


def _de(header: str, description: str) -> dict[str, str]:
    """Column metadata: the German header (Excel, BI) and the German description (data dictionary)."""
    return {"de": header, "description_de": description}


# descriptions used by several tables
_CYCLE = _de("Berichtsjahr", "Berichtsjahr (Stichtag 31.12. des Jahres), aus dem die Daten stammen.")
_LEVEL = _de("Gebietsebene", "Gebietsebene: city (Gesamtstadt) oder die Kennung einer Gebietsebene der Stadt "
             "(siehe Tabelle area_levels).")
_AREA = _de("Gebietsnummer", "Schlüssel des Gebiets auf seiner Gebietsebene.")
_AREA_NAME = _de("Gebietsname", "Name des Gebiets.")
# the key of an area across levels (area_id "01" can be a Stadtbezirk and a Sozialraum): level, separator, id
AREA_KEY_SEPARATOR = ":"
_AREA_KEY = _de("Gebietsschlüssel", "Schlüssel des Gebiets über alle Gebietsebenen hinweg: Gebietsebene und "
                "Gebietsnummer, durch einen Doppelpunkt getrennt (z. B. sozialraum:01); die Gebietsnummer allein ist "
                "nur innerhalb einer Gebietsebene eindeutig.")
_INDICATOR = _de("Indikator", "Schlüssel des Indikators (siehe Tabelle indicators, Indikatorenkatalog).")
_VALUE = _de("Wert", "Wert des Indikators im Gebiet; leer, wenn der Wert der statistischen Geheimhaltung "
             "unterliegt (gesperrt).")
_CITY_VALUE = _de("Wert Gesamtstadt", "Wert desselben Indikators für die Gesamtstadt im selben Berichtsjahr "
                  "(Vergleichswert).")
_SUPPRESSED = _de("Gesperrt", "Wahr, wenn der Wert der statistischen Geheimhaltung unterliegt und deshalb "
                  "leer ist.")
_METHOD = _de("Verfahren", "Schlüssel des Klassifikationsverfahrens (siehe Tabelle classification_methods).")
_DIMENSION = _de("Dimension", "Schlüssel der Dimension des Verfahrens, z. B. status (Status) oder dynamics "
                 "(Dynamik).")
_DIMENSION_NAME = _de("Bezeichnung der Dimension", "Deutsche Bezeichnung der Dimension, wie das Verfahren sie "
                      "nennt (name_de der Dimension in seiner Definition), z. B. Status-Index.")
_REASONS = _de("Begründung", "Begründung in Worten; ersetzt durch einen Hinweis, wenn sie sich auf einen "
               "gesperrten Wert stützen würde (statistische Geheimhaltung).")


class _Published(pa.DataFrameModel):
    class Config:
        strict = True
        coerce = False


class _AreaKeyed(_Published):
    """A table with area_level, area_id and the cross-level area_key made of them."""

    @pa.dataframe_check(error="area_key must be area_level, ':' and area_id")
    def area_key_is_level_and_id(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            pl.col("area_key") == pl.concat_str("area_level", pl.lit(AREA_KEY_SEPARATOR), "area_id"))


class Areas(_AreaKeyed):
    """Die Gebietsgliederung: every area of every level."""

    area_level: str = pa.Field(metadata=_LEVEL)
    area_id: str = pa.Field(metadata=_AREA)
    area_key: str = pa.Field(unique=True, metadata=_AREA_KEY)
    area_name: str = pa.Field(metadata=_AREA_NAME)
    name_status: str = pa.Field(isin=["published", "assumed"], metadata=_de(
        "Herkunft des Namens", "published: amtlich veröffentlichter Gebietsname; assumed: angenommener Name "
        "(nicht amtlich belegt)."))

    class Config:
        unique = ["area_level", "area_id"]
        title = "Gebiete"
        description = ("Die Gebietsgliederung der Stadt: jedes Gebiet jeder Gebietsebene (siehe area_levels) mit "
                       "seinem Namen; in welchen Gebieten es liegt, steht in area_hierarchy.")
        metadata = {"sheet_de": "Gebiete"}


class AreaLevels(_Published):
    """Die Gebietsebenen, wie die Stadt sie nennt."""

    area_level: str = pa.Field(unique=True, metadata=_de(
        "Kennung der Gebietsebene", "Kennung der Gebietsebene (city für die Gesamtstadt), wie sie in den anderen "
        "Tabellen und im Gebietsschlüssel steht; in der Arbeitsmappe steht in den anderen Tabellenblättern der Name "
        "(Spalte Gebietsebene)."))
    name_de: str = pa.Field(metadata=_de("Gebietsebene", "Name der Gebietsebene, z. B. Stadtbezirk (für die "
                                         "Gesamtstadt city.name_de in geography/levels.yml, z. B. Gesamtstadt)."))
    plural_de: str = pa.Field(metadata=_de("Bezeichnung (Mehrzahl)", "Name der Gebietsebene in der Mehrzahl, "
                                           "z. B. Stadtbezirke."))
    parent_level: str = pa.Field(nullable=True, metadata=_de(
        "Übergeordnete Ebene", "Die Gebietsebene, in der jedes Gebiet dieser Ebene liegt; leer für die "
        "Gesamtstadt und für Ebenen, die Gebiete quer zur Gliederung zusammenfassen."))
    grouped_level: str = pa.Field(nullable=True, metadata=_de(
        "Zusammengefasste Ebene", "Bei einer Ebene, die Gebiete der untersten Ebene quer zur Gliederung "
        "zusammenfasst (z. B. Sozialräume): die zusammengefasste Ebene; sonst leer."))
    is_base: bool = pa.Field(metadata=_de("Unterste Ebene", "Wahr für die Ebene, die die Lieferungen tragen; jede "
                                          "andere Ebene wird aus ihr gebildet."))
    level_order: pl.Int32 = pa.Field(ge=0, unique=True, metadata=_de("Reihenfolge", "Reihenfolge der Ebenen "
                                                                     "(Gesamtstadt 0)."))

    class Config:
        title = "Gebietsebenen"
        description = ("Die Gebietsebenen der Stadt mit ihren Namen, der übergeordneten Ebene und der untersten "
                       "Ebene, aus der alle Zahlen gebildet werden.")
        metadata = {"sheet_de": "Gebietsebenen"}


class AreaHierarchy(_AreaKeyed):
    """Which area lies in which: one row per area and per area of a higher or grouping level it lies in."""

    area_level: str = pa.Field(metadata=_LEVEL)
    area_id: str = pa.Field(metadata=_AREA)
    area_key: str = pa.Field(metadata=_AREA_KEY)
    container_level: str = pa.Field(metadata=_de("Ebene des umfassenden Gebiets", "Gebietsebene des Gebiets, in "
                                                 "dem das Gebiet liegt (siehe area_levels)."))
    container_id: str = pa.Field(metadata=_de("Umfassendes Gebiet", "Schlüssel des Gebiets, in dem das Gebiet "
                                              "liegt."))
    is_direct: bool = pa.Field(metadata=_de(
        "Unmittelbar", "Wahr, wenn das Gebiet unmittelbar in diesem Gebiet liegt (übergeordnetes Gebiet oder "
        "zusammenfassendes Gebiet); die Zahlen des umfassenden Gebiets sind die Summe dieser Gebiete."))
    valid_from: pl.Int32 = pa.Field(nullable=True, metadata=_de(
        "Gültig ab", "Erstes Berichtsjahr, in dem das Gebiet so liegt (leer: seit jeher); nach einer Gebietsreform "
        "beginnen neue Gebiete, alte enden."))
    valid_to: pl.Int32 = pa.Field(nullable=True, metadata=_de(
        "Gültig bis", "Letztes Berichtsjahr, in dem das Gebiet so liegt (leer: bis heute)."))

    class Config:
        unique = ["area_level", "area_id", "container_level"]
        title = "Gebietszuordnung"
        description = ("Für jedes Gebiet jedes Gebiet einer höheren oder zusammenfassenden Ebene, in dem es liegt "
                       "(auch die Gesamtstadt): mit container_level = Ebene erhält man zu jedem Gebiet sein Gebiet "
                       "dieser Ebene.")
        metadata = {"sheet_de": "Gebietszuordnung"}


class Indicators(_Published):
    """Der Indikatorenkatalog."""

    indicator_id: str = pa.Field(unique=True, metadata=_de("Indikator", "Schlüssel des Indikators."))
    sort_order: pl.Int32 = pa.Field(metadata=_de("Reihenfolge", "Sortierreihenfolge im Bericht."))
    name_de: str = pa.Field(metadata=_de("Bezeichnung", "Deutsche Bezeichnung des Indikators, z. B. "
                                         "Transferleistungsquote."))
    description_de: str = pa.Field(nullable=True, metadata=_de("Definition", "Definition des Indikators."))
    numerator_measure: str = pa.Field(nullable=True, metadata=_de(
        "Zähler", "Zählgröße des Zählers (Anzahl je Gebiet der untersten Gebietsebene, zu jeder Ebene aufsummiert); "
        "leer bei einer Veränderung eines Indikators (in Prozentpunkten, ohne eigene Zählgrößen)."))
    denominator_measure: str = pa.Field(nullable=True, metadata=_de(
        "Nenner", "Zählgröße des Nenners; leer bei reinen Anzahlen."))
    unit: str = pa.Field(metadata=_de("Einheit", "Einheit des Werts, z. B. % oder Personen."))
    scale: pl.Int32 = pa.Field(metadata=_de("Faktor", "Wert = Faktor × Zähler / Nenner (100 bei Quoten in %)."))
    direction: str = pa.Field(isin=["higher_is_worse", "higher_is_better", "neutral"], metadata=_de(
        "Richtung", "higher_is_worse: ein höherer Wert ist ungünstiger; higher_is_better: ein höherer Wert ist "
        "günstiger; neutral: keine Wertung."))
    topic_field: str = pa.Field(isin=TOPICS, metadata=_de("Themenfeld", "Themenfeld des Berichts: "
                                                          + ", ".join(TOPICS) + "."))
    target_group: str = pa.Field(nullable=True, isin=TARGET_GROUPS, metadata=_de(
        "Zielgruppe", "Zielgruppe, die der Indikator beschreibt (" + ", ".join(TARGET_GROUPS) + "); leer, wenn "
        "keine."))

    class Config:
        title = "Indikatoren"
        description = ("Der Indikatorenkatalog: Bezeichnung, Definition, Zähler, Nenner, Einheit und Richtung jedes "
                       "Indikators.")
        metadata = {"sheet_de": "Indikatoren"}


class _AreaIndicatorCells(_AreaKeyed):
    """The cells of area_indicators and area_indicators_harmonised: one row per cycle, area and indicator."""

    report_cycle: pl.Int32 = pa.Field(metadata=_CYCLE)
    area_level: str = pa.Field(metadata=_LEVEL)
    area_id: str = pa.Field(metadata=_AREA)
    area_key: str = pa.Field(metadata=_AREA_KEY)
    indicator_id: str = pa.Field(metadata=_INDICATOR)
    numerator: pl.Int64 = pa.Field(nullable=True, metadata=_de(
        "Zähler", "Anzahl im Zähler (z. B. Personen mit Transferleistungen); leer, wenn gesperrt."))
    denominator: pl.Int64 = pa.Field(nullable=True, ge=0, metadata=_de(
        "Nenner", "Anzahl im Nenner (z. B. Einwohnerinnen und Einwohner); leer bei reinen Anzahlen oder wenn "
        "gesperrt."))
    value: pl.Float64 = pa.Field(nullable=True, metadata=_VALUE)
    city_value: pl.Float64 = pa.Field(nullable=True, metadata=_CITY_VALUE)
    suppression: str = pa.Field(nullable=True, isin=["small_count", "small_population", "secondary"], metadata=_de(
        "Geheimhaltung", "Grund der Sperrung (statistische Geheimhaltung), leer wenn nicht gesperrt: small_count "
        "({small_count}), small_population ({small_population}), secondary ({secondary})."))
    geography_version: pl.Int32 = pa.Field(metadata=_de(
        "Gebietsstand", "Gebietsstand der Zeile: das erste Berichtsjahr mit der Gebietsgliederung, auf der die Zahlen "
        "stehen. In dieser Tabelle der eigene Gebietsstand des Berichtsjahres; eine Veränderung seit dem vorigen "
        "Berichtsjahr steht auf diesem Gebietsstand (das vorige Berichtsjahr wird dafür auf ihn umgerechnet)."))


    @pa.dataframe_check(error="a suppressed cell must have no numerator, denominator or value")
    def suppressed_cells_are_empty(cls, data: pa.PolarsData) -> pl.LazyFrame:
        hidden = pl.col("suppression").is_not_null()
        return data.lazyframe.select(
            ~hidden | (pl.col("numerator").is_null() & pl.col("denominator").is_null() & pl.col("value").is_null()))

    @pa.dataframe_check(error="no published count may lie between 1 and 2 (statistische Geheimhaltung)")
    def no_small_counts(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            ~pl.col("numerator").is_between(1, 2).fill_null(False) & ~pl.col("denominator").is_between(1, 2)
            .fill_null(False))


class AreaIndicators(_AreaIndicatorCells):
    """Indikatoren je Gebiet und Berichtsjahr, mit Rang und Dezil (social_monitor/ranks.py)."""

    value_rank: pl.Int32 = pa.Field(nullable=True, ge=1, metadata=_de(
        "Rang", "Rang des Werts unter den Gebieten derselben Gebietsebene im selben Berichtsjahr: 1 = höchster Wert, "
        "gleich ob ein hoher Wert günstig oder ungünstig ist (siehe indicators.direction). Gleiche Werte erhalten "
        "denselben, besten Rang (1, 2, 2, 4). Gerechnet nur unter den veröffentlichten Werten, nach der "
        "statistischen Geheimhaltung: gesperrte Zellen und Zellen ohne Wert haben keinen Rang und zählen nicht mit, "
        "der Rang verrät also nichts über einen gesperrten Wert. Leer für die Gesamtstadt."))
    ranked_areas: pl.Int32 = pa.Field(nullable=True, ge=1, metadata=_de(
        "Gebiete im Rang", "Anzahl der Gebiete derselben Gebietsebene mit veröffentlichtem Wert im selben "
        "Berichtsjahr, unter denen der Rang gilt (Rang x von y); leer, wo die Zelle keinen Rang hat."))
    value_decile: pl.Int32 = pa.Field(nullable=True, ge=1, le=10, metadata=_de(
        "Dezil", "Dezil des Werts unter denselben Gebieten: aufgerundet 10 × (Anzahl der Gebiete mit einem Wert "
        "kleiner oder gleich diesem) / (Gebiete im Rang); 10 = das Zehntel mit den höchsten Werten, 1 = das mit den "
        "niedrigsten, gleiche Werte im selben Dezil. Nur unter den veröffentlichten Werten wie der Rang; leer, wo "
        "die Zelle keinen Rang hat oder weniger als 10 Gebiete einen Rang haben."))

    class Config:
        unique = ["report_cycle", "area_level", "area_id", "indicator_id"]
        title = "Indikatoren je Gebiet"
        description = ("Jeder Indikator für jedes Gebiet jeder Ebene und jedes Berichtsjahr: Zähler, Nenner, Wert und "
                       "Wert der Gesamtstadt. Gesperrte Zellen (statistische Geheimhaltung) bleiben als Zeile "
                       "erhalten, ihre Zahlen sind leer, der Grund steht in suppression. Rang und Dezil je Ebene und "
                       "Berichtsjahr nur unter den veröffentlichten Werten.")
        metadata = {"sheet_de": "Indikatoren je Gebiet"}

    @pa.dataframe_check(error="a cell without a published value has no rank or decile, and no rank exceeds the "
                        "ranked areas")
    def ranks_only_of_published_values(cls, data: pa.PolarsData) -> pl.LazyFrame:
        unranked = pl.col("suppression").is_not_null() | pl.col("value").is_null() | (pl.col("area_level") == CITY_ID)
        return data.lazyframe.select(
            (~unranked | (pl.col("value_rank").is_null() & pl.col("ranked_areas").is_null()
                          & pl.col("value_decile").is_null()))
            & (pl.col("value_rank") <= pl.col("ranked_areas")).fill_null(True))


class AreaIndicatorsHarmonised(_AreaIndicatorCells):
    """Indikatoren je Gebiet und Berichtsjahr auf dem aktuellen Gebietsstand (harmonisierte Reihe)."""

    is_estimate: bool = pa.Field(metadata=_de(
        "Schätzung", "Wahr, wenn die Zahlen des Gebiets geschätzt sind: ein Gebiet des Berichtsjahres wurde bei einer "
        "Gebietsreform geteilt, und ein Teil seiner Personen ist diesem Gebiet nach dem Umrechnungsschlüssel "
        "(area_conversion) zugeordnet. Falsch, wenn die Zahlen exakt sind (das Gebiet bestand schon, wurde nur "
        "umbenannt oder enthält alle Teile geteilter Gebiete)."))
    conversion_status: str = pa.Field(nullable=True, isin=["published", "assumed"], metadata=_de(
        "Umrechnung", "Worauf die Umrechnung beruht: published (veröffentlichte Zuordnung), assumed (angenommene "
        "Zuordnung, z. B. nach Einwohneranteilen); leer, wo kein umgerechnetes Gebiet beiträgt."))

    class Config:
        unique = ["report_cycle", "area_level", "area_id", "indicator_id"]
        title = "Indikatoren je Gebiet, aktueller Gebietsstand"
        description = ("Jedes Berichtsjahr auf den Gebieten des aktuellen Gebietsstands (harmonisierte Reihe): für "
                       "Zeitreihen und Veränderungen über eine Gebietsreform hinweg. Berichtsjahre auf einem älteren "
                       "Gebietsstand werden umgerechnet: jede Person eines aufgelösten Gebiets wird einem "
                       "Nachfolgegebiet zugeordnet (area_conversion); is_estimate kennzeichnet geschätzte Zeilen. "
                       "Gesperrte Zellen wie in area_indicators. Ohne Rang und Dezil: sie vergleichen die Gebiete "
                       "eines Berichtsjahres und stehen in area_indicators auf dessen eigenem Gebietsstand; hier wären "
                       "sie für die Berichtsjahre des aktuellen Gebietsstands dieselben und für ältere eine zweite "
                       "Rangfolge aus teils geschätzten Zahlen.")
        metadata = {"sheet_de": "Indikatoren aktueller Stand"}


class AreaConversion(_Published):
    """Umrechnungsschlüssel aufgelöster Gebiete der untersten Ebene auf ihre Nachfolger."""

    old_area_id: str = pa.Field(metadata=_de("Altes Gebiet", "Schlüssel des aufgelösten Gebiets (unterste Ebene)."))
    new_area_id: str = pa.Field(metadata=_de("Neues Gebiet", "Schlüssel eines Nachfolgegebiets auf dem aktuellen "
                                             "Gebietsstand."))
    weight: pl.Float64 = pa.Field(gt=0, le=1, metadata=_de(
        "Anteil", "Anteil der Personen des alten Gebiets, der dem neuen Gebiet zugeordnet wird."))
    weight_status: str = pa.Field(isin=["published", "assumed"], metadata=_de(
        "Herkunft des Anteils", "published: veröffentlichte Zuordnung; assumed: angenommen (z. B. nach "
        "Einwohneranteilen)."))

    class Config:
        unique = ["old_area_id", "new_area_id"]
        title = "Umrechnungsschlüssel"
        description = ("Wie die Gebiete der untersten Ebene eines älteren Gebietsstands auf den aktuellen umgerechnet "
                       "werden (Grundlage von area_indicators_harmonised); leer, wenn die Stadt keine Gebietsreform "
                       "hatte.")
        metadata = {"sheet_de": "Umrechnungsschlüssel"}


class ActionAreas(_AreaKeyed):
    """Aktionsräume je Berichtsjahr: one row per cycle and area of the classified level."""

    report_cycle: pl.Int32 = pa.Field(metadata=_CYCLE)
    area_level: str = pa.Field(metadata=_de("Gebietsebene", "Gebietsebene der Einstufung (action_areas.area_level "
                                            "in city.yml, z. B. sozialraum)."))
    area_id: str = pa.Field(metadata=_de("Gebiet", "Schlüssel des eingestuften Gebiets."))
    area_key: str = pa.Field(metadata=_AREA_KEY)
    area_name: str = pa.Field(nullable=True, metadata=_AREA_NAME)
    is_action_area: bool = pa.Field(metadata=_de(
        "Aktionsraum", "Wahr, wenn das Gebiet in diesem Berichtsjahr ein Aktionsraum ist."))
    change_since_previous: str = pa.Field(isin=CHANGES, metadata=_de(
        "Veränderung zum Vorbericht", "first_cycle (erstes Berichtsjahr), kept (bleibt Aktionsraum), new (neuer "
        "Aktionsraum), released (kein Aktionsraum mehr), not_action_area (kein Aktionsraum)."))
    indicators_worse_count: pl.Int32 = pa.Field(ge=0, metadata=_de(
        "Anzahl ungünstiger Indikatoren", "Anzahl der Regelindikatoren, die ungünstiger als der Wert der "
        "Gesamtstadt sind."))
    min_indicators_worse: pl.Int32 = pa.Field(ge=1, metadata=_de(
        "Mindestanzahl", "So viele Regelindikatoren müssen mindestens ungünstiger als die Gesamtstadt sein, damit "
        "das Gebiet ein Aktionsraum ist."))
    indicators_worse: str = pa.Field(nullable=True, metadata=_de(
        "Ungünstigere Indikatoren", "Die Regelindikatoren, die ungünstiger als die Gesamtstadt sind."))
    reasons: str = pa.Field(nullable=True, metadata=_REASONS)

    class Config:
        unique = ["report_cycle", "area_id"]
        title = "Aktionsräume"
        description = ("Aktionsräume je Berichtsjahr: für jedes Gebiet, ob es ein Aktionsraum ist (mindestens so "
                       "viele Regelindikatoren wie verlangt, z. B. Transferleistungsquote, ungünstiger als die "
                       "Gesamtstadt), die Veränderung zum Vorbericht und die Begründung.")
        metadata = {"sheet_de": "Aktionsräume"}


class ActionAreaIndicators(_Published):
    """The values behind each classification: the area's value and the city value per rule indicator."""

    report_cycle: pl.Int32 = pa.Field(metadata=_CYCLE)
    area_id: str = pa.Field(metadata=_de("Gebiet", "Schlüssel des eingestuften Gebiets."))
    indicator_id: str = pa.Field(metadata=_de("Regelindikator", "Schlüssel des Regelindikators der "
                                              "Aktionsraum-Regel."))
    value: pl.Float64 = pa.Field(nullable=True, metadata=_VALUE)
    city_value: pl.Float64 = pa.Field(nullable=True, metadata=_CITY_VALUE)
    is_worse: bool = pa.Field(metadata=_de("Ungünstiger als Gesamtstadt", "Wahr, wenn der Wert des Gebiets "
                                           "ungünstiger als der Wert der Gesamtstadt ist."))
    is_suppressed: bool = pa.Field(metadata=_SUPPRESSED)

    class Config:
        unique = ["report_cycle", "area_id", "indicator_id"]
        title = "Aktionsräume: Indikatoren"
        description = ("Die Werte hinter jeder Einstufung als Aktionsraum: Wert des Gebiets und der Gesamtstadt "
                       "je Regelindikator und Berichtsjahr.")
        metadata = {"sheet_de": "Aktionsräume Indikatoren"}


class ActionAreaQuartiere(_Published):
    """The Quartiere (the areas of the base level) inside each action area, and whether each is still worse than
    the city."""

    report_cycle: pl.Int32 = pa.Field(metadata=_CYCLE)
    area_id: str = pa.Field(metadata=_de("Aktionsraum", "Schlüssel des Gebiets, das Aktionsraum ist "
                                         "(Ebene: action_areas.area_level)."))
    base_area_id: str = pa.Field(metadata=_de("Quartier", "Schlüssel des Quartiers im Aktionsraum: ein Gebiet der "
                                              "untersten Ebene (area_levels.is_base, z. B. Unterbezirk)."))
    base_area_name: str = pa.Field(nullable=True, metadata=_de("Name des Quartiers", "Name des Quartiers."))
    indicator_id: str = pa.Field(metadata=_de("Indikator", "Der Indikator, an dem die Quartiere gemessen werden "
                                              "(quartier_indicator, z. B. Transferleistungsquote)."))
    value: pl.Float64 = pa.Field(nullable=True, metadata=_VALUE)
    city_value: pl.Float64 = pa.Field(nullable=True, metadata=_CITY_VALUE)
    is_worse_than_city: bool = pa.Field(metadata=_de("Ungünstiger als Gesamtstadt", "Wahr, wenn das Quartier "
                                                     "ungünstiger als die Gesamtstadt ist."))
    is_suppressed: bool = pa.Field(metadata=_SUPPRESSED)

    class Config:
        unique = ["report_cycle", "area_id", "base_area_id", "indicator_id"]
        title = "Aktionsräume: Quartiere"
        description = ("Die Quartiere (Gebiete der untersten Ebene) in jedem Aktionsraum und ob jedes noch "
                       "ungünstiger als die Gesamtstadt ist.")
        metadata = {"sheet_de": "Aktionsräume Quartiere"}


class ClassificationMethods(_Published):
    """Die Klassifikationsverfahren: one row per method, with its full definition (YAML) for traceability."""

    method_id: str = pa.Field(unique=True, metadata=_de("Verfahren", "Schlüssel des Klassifikationsverfahrens."))
    name_de: str = pa.Field(metadata=_de("Bezeichnung", "Deutsche Bezeichnung des Verfahrens."))
    area_level: str = pa.Field(metadata=_de("Gebietsebene", "Gebietsebene, die das Verfahren "
                                                              "einstuft."))
    description: str = pa.Field(metadata=_de("Beschreibung", "Beschreibung des Verfahrens."))
    source: str = pa.Field(metadata=_de("Quelle", "Quelle oder Vorbild des Verfahrens (z. B. Berliner Monitoring "
                                        "Soziale Stadtentwicklung)."))
    dimensions: str = pa.Field(metadata=_de("Dimensionen", "Die Dimensionen des Verfahrens (z. B. Status, Dynamik)."))
    flag_label: str = pa.Field(nullable=True, metadata=_de("Bezeichnung der Markierung", "Wie ein markiertes Gebiet "
                                                           "heißt, z. B. Gebiet mit besonderem Aufmerksamkeitsbedarf."))
    min_population: pl.Float64 = pa.Field(ge=0, metadata=_de("Mindesteinwohnerzahl", "Gebiete mit weniger "
                                                             "Einwohnerinnen und Einwohnern werden nicht eingestuft."))
    definition_yaml: str = pa.Field(metadata=_de("Definition (YAML)", "Die vollständige Definition des Verfahrens "
                                                 "als YAML, zur Nachvollziehbarkeit."))
    notes: str = pa.Field(nullable=True, metadata=_de("Anmerkungen", "Anmerkungen zum Verfahren."))

    class Config:
        title = "Klassifikationsverfahren"
        description = ("Die Klassifikationsverfahren (z. B. nach dem Berliner MSS oder Hamburger RISE): je Verfahren "
                       "Bezeichnung, Gebietsebene, Quelle und die vollständige Definition.")
        metadata = {"sheet_de": "Klassifikationsverfahren"}


class AreaClassifications(_Published):
    """Gebietsklassifikation je Verfahren, Berichtsjahr und Gebiet: combined class, flag, change, reasons."""

    method_id: str = pa.Field(metadata=_METHOD)
    report_cycle: pl.Int32 = pa.Field(metadata=_CYCLE)
    area_id: str = pa.Field(metadata=_AREA)
    area_name: str = pa.Field(nullable=True, metadata=_AREA_NAME)
    population: pl.Float64 = pa.Field(nullable=True, ge=0, metadata=_de(
        "Einwohner", "Einwohnerinnen und Einwohner des Gebiets; leer, wenn gesperrt (statistische Geheimhaltung)."))
    is_included: bool = pa.Field(metadata=_de("Eingestuft", "Wahr, wenn das Gebiet in diesem Berichtsjahr "
                                              "eingestuft wurde."))
    exclusion_reason: str = pa.Field(nullable=True, metadata=_de("Ausschlussgrund", "Warum das Gebiet nicht "
                                                                 "eingestuft wurde (z. B. zu wenige Einwohner)."))
    combined_class: str = pa.Field(nullable=True, metadata=_de("Gesamtklasse", "Kombinierte Klasse aus den "
                                                               "Dimensionen, z. B. 3− (Status 3, Dynamik negativ)."))
    is_flagged: bool = pa.Field(nullable=True, metadata=_de("Markiert", "Wahr, wenn das Gebiet nach dem Verfahren "
                                                            "markiert ist (siehe Bezeichnung der Markierung)."))
    change_since_previous: str = pa.Field(nullable=True, isin=FLAG_CHANGES, metadata=_de(
        "Veränderung zum Vorbericht", "first_cycle (erstes Berichtsjahr), kept (bleibt markiert), new (neu "
        "markiert), released (nicht mehr markiert), not_flagged (nicht markiert)."))
    is_fragile: bool = pa.Field(nullable=True, metadata=_de("Knapp eingestuft", "Wahr, wenn eine Klasse nahe an "
                                                            "einer Klassengrenze liegt."))
    reasons: str = pa.Field(nullable=True, metadata=_REASONS)

    class Config:
        unique = ["method_id", "report_cycle", "area_id"]
        title = "Gebietsklassifikation"
        description = ("Die Einstufung jedes Gebiets je Verfahren und Berichtsjahr: Gesamtklasse, Markierung, "
                       "Veränderung zum Vorbericht und Begründung.")
        metadata = {"sheet_de": "Gebietsklassifikation"}


class AreaClassificationDimensions(_Published):
    """Index and class of each dimension (Status, Dynamik …), the previous class and the distance to a border."""

    method_id: str = pa.Field(metadata=_METHOD)
    report_cycle: pl.Int32 = pa.Field(metadata=_CYCLE)
    area_id: str = pa.Field(metadata=_AREA)
    dimension_id: str = pa.Field(metadata=_DIMENSION)
    dimension_name: str = pa.Field(metadata=_DIMENSION_NAME)
    indicator_count: pl.Int32 = pa.Field(ge=1, metadata=_de("Anzahl Indikatoren", "Anzahl der Indikatoren im "
                                                            "Index der Dimension."))
    raw_index: pl.Float64 = pa.Field(metadata=_de("Rohindex", "Index vor der erneuten Standardisierung: Summe oder "
                                                  "Mittel der gewichteten standardisierten Werte."))
    index_value: pl.Float64 = pa.Field(metadata=_de("Index", "Indexwert der Dimension, nach dem die Klasse gebildet "
                                                    "wird."))
    class_code: pl.Int32 = pa.Field(metadata=_de("Klasse", "Klasse der Dimension (Nummer)."))
    class_label: str = pa.Field(metadata=_de("Klassenbezeichnung", "Bezeichnung der Klasse, z. B. hoch, mittel, "
                                             "niedrig, sehr niedrig."))
    previous_cycle: pl.Int32 = pa.Field(nullable=True, metadata=_de("Vorheriges Berichtsjahr", "Das Berichtsjahr, "
                                                                    "mit dem verglichen wird."))
    previous_class_code: pl.Int32 = pa.Field(nullable=True, metadata=_de("Vorherige Klasse", "Klasse im vorherigen "
                                                                         "Berichtsjahr."))
    class_change: str = pa.Field(isin=CLASS_CHANGES, metadata=_de(
        "Klassenveränderung", "no_previous (kein Vorbericht), same (gleich), better (besser), worse (schlechter)."))
    distance_to_border: pl.Float64 = pa.Field(ge=0, metadata=_de("Abstand zur Klassengrenze", "Abstand des "
                                                                 "Indexwerts zur nächsten Klassengrenze."))
    is_fragile: bool = pa.Field(metadata=_de("Knapp eingestuft", "Wahr, wenn der Indexwert innerhalb der Marge des "
                                             "Verfahrens an einer Klassengrenze liegt."))
    alternative_class_code: pl.Int32 = pa.Field(nullable=True, metadata=_de(
        "Alternative Klasse", "Die Klasse, in die das Gebiet bei knapper Einstufung kippen könnte."))

    class Config:
        unique = ["method_id", "report_cycle", "area_id", "dimension_id"]
        title = "Gebietsklassifikation: Dimensionen"
        description = ("Index und Klasse jeder Dimension (Status, Dynamik …) je Verfahren, Berichtsjahr und Gebiet, "
                       "mit der vorherigen Klasse und dem Abstand zur Klassengrenze.")
        metadata = {"sheet_de": "Klassifikation Dimensionen"}


class AreaClassificationIndicators(_Published):
    """The inputs of every index: value, mean, SD, standardised value, weight and contribution per indicator."""

    method_id: str = pa.Field(metadata=_METHOD)
    report_cycle: pl.Int32 = pa.Field(metadata=_CYCLE)
    area_id: str = pa.Field(metadata=_AREA)
    dimension_id: str = pa.Field(metadata=_DIMENSION)
    indicator_id: str = pa.Field(metadata=_de("Indikator", "Schlüssel des Indikators im Verfahren (bei Veränderungen "
                                              "z. B. mit Zusatz der Veränderung)."))
    source_indicator_id: str = pa.Field(metadata=_de("Quellindikator", "Schlüssel des Indikators im "
                                                     "Indikatorenkatalog, aus dem der Wert stammt."))
    value: pl.Float64 = pa.Field(nullable=True, metadata=_VALUE)
    city_value: pl.Float64 = pa.Field(nullable=True, metadata=_CITY_VALUE)
    mean: pl.Float64 = pa.Field(metadata=_de("Mittelwert", "Mittelwert des Indikators über die eingestuften Gebiete."))
    sd: pl.Float64 = pa.Field(nullable=True, metadata=_de("Standardabweichung", "Standardabweichung des Indikators "
                                                          "über die eingestuften Gebiete."))
    standardised: pl.Float64 = pa.Field(nullable=True, metadata=_de("Standardisierter Wert", "z-Wert: (Wert − "
                                                                    "Mittelwert) / Standardabweichung; leer, wenn "
                                                                    "gesperrt."))
    weight: pl.Float64 = pa.Field(gt=0, metadata=_de("Gewicht", "Gewicht des Indikators im Index."))
    contribution: pl.Float64 = pa.Field(nullable=True, metadata=_de("Beitrag", "Beitrag des Indikators zum Index "
                                                                    "(Gewicht × standardisierter Wert); leer, wenn "
                                                                    "gesperrt."))
    is_suppressed: bool = pa.Field(metadata=_de("Gesperrt", "Wahr, wenn die Werte dieser Dimension wegen der "
                                                "statistischen Geheimhaltung leer sind."))

    class Config:
        unique = ["method_id", "report_cycle", "area_id", "dimension_id", "indicator_id"]
        title = "Gebietsklassifikation: Indikatoren"
        description = ("Die Eingangswerte jedes Index: Wert, Mittelwert, Standardabweichung, standardisierter Wert, "
                       "Gewicht und Beitrag je Indikator, damit jede Klasse nachgerechnet werden kann.")
        metadata = {"sheet_de": "Klassifikation Indikatoren"}


class Publication(_Published):
    """One row per published table: when, what and how many rows."""

    table_name: str = pa.Field(unique=True, metadata=_de("Tabelle", "Name der veröffentlichten Tabelle."))
    row_count: pl.Int64 = pa.Field(ge=0, metadata=_de("Zeilen", "Anzahl der Zeilen der Tabelle."))
    published_at: pl.Datetime = pa.Field(metadata=_de("Veröffentlicht am", "Zeitpunkt der Veröffentlichung."))
    report_cycles: str = pa.Field(metadata=_de("Berichtsjahre", "Die veröffentlichten Berichtsjahre."))
    city_name: str = pa.Field(metadata=_de("Stadt", "Name der Stadt."))

    class Config:
        title = "Veröffentlichung"
        description = ("Je veröffentlichter Tabelle: Zeitpunkt der Veröffentlichung, Berichtsjahre, Stadt und Anzahl "
                       "der Zeilen.")
        metadata = {"sheet_de": "Veröffentlichung"}


class DisclosureAudit(_Published):
    """Per report cycle: what the disclosure audit could recover of the suppressed cells (counts of cells only)."""

    report_cycle: pl.Int32 = pa.Field(unique=True, metadata=_CYCLE)
    suppressed_cells: pl.Int64 = pa.Field(ge=0, metadata=_de(
        "Gesperrte Zellen", "Anzahl der gesperrten Zellen in area_indicators."))
    confidential_cells: pl.Int64 = pa.Field(ge=0, metadata=_de(
        "Geheim gehaltene Zellen", "Davon Zellen, deren Zähler oder Nenner nirgends veröffentlicht ist (ohne Quoten "
        "zu kleiner Gebiete, deren Zahlen veröffentlicht sind)."))
    recoverable_by_subtraction: pl.Int64 = pa.Field(eq=0, metadata=_de(
        "Durch Subtraktion errechenbar", "Gesperrte Zellen, die sich durch eine Subtraktion in einer deklarierten "
        "Summenbeziehung (Gebietsebenen, Summe von Teilgrößen, Veränderung zum Vorjahr) errechnen lassen; muss 0 "
        "sein."))
    recoverable_by_linear_program: pl.Int64 = pa.Field(eq=0, metadata=_de(
        "Durch lineare Optimierung errechenbar", "Gesperrte Zellen, deren Zahlen durch alle veröffentlichten Werte "
        "und Beziehungen zusammen (Minimum = Maximum im linearen Programm) festliegen; muss 0 sein."))
    narrower_than_protection: pl.Int64 = pa.Field(eq=0, metadata=_de(
        "Schutzintervall unterschritten", "Wegen kleiner Fallzahl gesperrte Zellen, deren Fallzahl sich auf ein "
        "engeres Intervall als das Schutzintervall eingrenzen lässt; muss 0 sein."))
    protection_interval: pl.Int64 = pa.Field(ge=1, metadata=_de(
        "Schutzintervall", "Mindestbreite des Intervalls (Personen), auf das sich eine gesperrte kleine Fallzahl "
        "eingrenzen lassen darf (publication.protection_interval, Vorgabe min_count)."))
    min_count: pl.Int64 = pa.Field(ge=3, metadata=_de(
        "Kleinste Fallzahl", "Kleinste veröffentlichte Fallzahl (publication.min_count); kleinere Fallzahlen ab 1 "
        "sind gesperrt."))
    min_population_for_rates: pl.Int64 = pa.Field(ge=0, metadata=_de(
        "Mindesteinwohnerzahl für Quoten", "Quoten von Gebieten mit weniger Einwohnern sind gesperrt "
        "(publication.min_population_for_rates)."))

    class Config:
        title = "Prüfung der Geheimhaltung"
        description = ("Je Berichtsjahr das Ergebnis der Prüfung, die bei jeder Veröffentlichung versucht, jede "
                       "gesperrte Zelle aus den veröffentlichten Werten zu errechnen: durch Subtraktion in jeder "
                       "deklarierten Summenbeziehung und durch lineare Optimierung über alle zusammen. Nur Anzahlen "
                       "von Zellen.")
        metadata = {"sheet_de": "Prüfung Geheimhaltung"}


# published table name -> (source table in the warehouse, contract)
PUBLISHED_TABLES: dict[str, tuple[str, type[_Published]]] = {
    "areas": ("marts.areas", Areas),
    "area_levels": ("marts.area_levels", AreaLevels),
    "area_hierarchy": ("marts.area_hierarchy", AreaHierarchy),
    "indicators": ("marts.indicators", Indicators),
    "area_indicators": ("marts.area_indicators", AreaIndicators),
    "area_indicators_harmonised": ("marts.area_indicators_harmonised", AreaIndicatorsHarmonised),
    "area_conversion": ("reference.area_conversion", AreaConversion),
    "action_areas": ("classification.action_areas", ActionAreas),
    "action_area_indicators": ("classification.action_area_indicators", ActionAreaIndicators),
    "action_area_quartiere": ("classification.action_area_quartiere", ActionAreaQuartiere),
    "classification_methods": ("classification.classification_methods", ClassificationMethods),
    "area_classifications": ("classification.area_classifications", AreaClassifications),
    "area_classification_dimensions": ("classification.area_classification_dimensions",
                                       AreaClassificationDimensions),
    "area_classification_indicators": ("classification.area_classification_indicators",
                                       AreaClassificationIndicators),
}

# every table of the published file, in the order of the file's documentation: the ones above, then publication
# and disclosure_audit (written by the publication itself)
DOCUMENTED_TABLES: dict[str, type[_Published]] = {
    **{table: contract for table, (_source, contract) in PUBLISHED_TABLES.items()}, "publication": Publication,
    "disclosure_audit": DisclosureAudit}


def primary_key(contract: type[_Published]) -> tuple[str, ...]:
    """The primary key the published file declares for a table: the contract's ``Config.unique`` if it has one,
    else its first column declared ``unique``. Every documented table has one (tests/test_bi_tools.py)."""
    schema = contract.to_schema()
    if schema.unique:
        return tuple(schema.unique)
    return tuple(name for name, column in schema.columns.items() if column.unique)[:1]


# ------------------------------------------------------------------------------------------- views for people
# The published file has views with German column names beside the tables (social_monitor/publish.py): one wide
# view per level, ``indikatoren_<level>`` (one row per report cycle and area, one column per indicator named by
# indicators.name_de), and the long view ``indikatoren_lang`` (area_indicators with the names joined in). A
# suppressed cell is empty in both.


@dataclass(frozen=True)
class ViewColumn:
    name: str  # the German column name
    source: str  # what the column shows: a column of the long view's joined tables (see publish.py)
    description_de: str


WIDE_VIEW_PREFIX = "indikatoren_"
LONG_VIEW = "indikatoren_lang"
_ROUNDING = ("Anzahlen (Indikatoren mit Zähler ohne Nenner, z. B. Personen) sind ganze Zahlen, alle anderen Werte "
             "auf die Nachkommastellen gerundet, die Bericht und Arbeitsmappe zeigen (Tabelle area_indicators: "
             "ungerundet).")
WIDE_VIEW_DESCRIPTION = (
    "Indikatoren der Gebietsebene {level_name} in einer breiten Tabelle: je Berichtsjahr und Gebiet eine Zeile mit "
    "dem Gebietsnamen, je Indikator eine Spalte (Spaltenname: Bezeichnung des Indikators). Gesperrte Werte "
    "(statistische Geheimhaltung) sind leer. Gebiete auf dem Gebietsstand ihres Berichtsjahres (wie "
    "area_indicators). " + _ROUNDING)
LONG_VIEW_DESCRIPTION = (
    "Jeder Indikator für jedes Gebiet jeder Ebene und jedes Berichtsjahr (area_indicators) mit den Namen der "
    "Gebietsebene, des Gebiets und des Indikators. Gesperrte Zellen (statistische Geheimhaltung) bleiben als "
    "Zeile erhalten, ihre Zahlen sind leer, der Grund steht in Geheimhaltung. Zähler und Nenner sind ganze "
    "Zahlen; Wert und Wert Gesamtstadt auf die Nachkommastellen gerundet, die Bericht und Arbeitsmappe zeigen.")
INDICATOR_COLUMN_DESCRIPTION = ("{name} ({unit}): {description} Leer, wenn gesperrt (statistische Geheimhaltung). "
                                "{rounding}")


def is_count(numerator_measure: str | None, denominator_measure: str | None, unit: str | None) -> bool:
    """A count (Personen, Fälle, Wohnungen): an indicator with a numerator and no denominator, other than a
    delivered index (unit "Index ..."). Its value is a whole number."""
    return bool(numerator_measure) and not denominator_measure and not str(unit or "").startswith("Index")


def value_decimals(numerator_measure: str | None, denominator_measure: str | None, unit: str | None) -> int:
    """The decimals an indicator's value is shown with, declared once for the views, the workbook and the report:
    none for a count and for an index (unit "Index ..."), one for every rate, share and change."""
    return 0 if is_count(numerator_measure, denominator_measure, unit) or str(unit or "").startswith("Index") else 1


def rounding_de(numerator_measure: str | None, denominator_measure: str | None, unit: str | None) -> str:
    """How a view shows the indicator's values, in German (for the column comments)."""
    if is_count(numerator_measure, denominator_measure, unit):
        return "Ganze Zahl."
    decimals = value_decimals(numerator_measure, denominator_measure, unit)
    return "Gerundet auf ganze Zahlen." if decimals == 0 else f"Gerundet auf {decimals} Nachkommastelle(n)."


def ascii_words(text: str) -> str:
    """``text`` in ASCII letters and digits for a name programs read (a view, a file): umlauts spelt out (ä → ae,
    ß → ss), other accents dropped, every other run of characters one underscore, none at either end."""
    for umlaut, spelt in {"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"}.items():
        text = text.replace(umlaut, spelt)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def wide_view_name(area_level: str, level_name: str) -> str:
    """The name of a level's wide view: ``indikatoren_<level id>``; for the built-in whole-city level (id
    ``city``) its German name instead (``indikatoren_gesamtstadt``, from the geography's ``city.name_de``), in
    lower case with umlauts spelt out, so no English id shows where people read."""
    if area_level != CITY_ID:
        return WIDE_VIEW_PREFIX + area_level
    return WIDE_VIEW_PREFIX + (ascii_words(level_name.lower()) or area_level)


# the whole city's key and id (``city``, ``city:city``) are for programs; where people read them, the city's name
_CITY_IN_VIEWS = (" Für die Gesamtstadt steht hier ihre Bezeichnung (Gebietsebene city in area_levels), in den "
                  "Tabellen die Kennung city.")
# the columns of each wide view before its indicator columns (source: a column of area_indicators or areas)
WIDE_VIEW_COLUMNS = (
    ViewColumn("Berichtsjahr", "i.report_cycle", _CYCLE["description_de"]),
    ViewColumn("Gebietsschlüssel", "i.area_key", _AREA_KEY["description_de"] + _CITY_IN_VIEWS),
    ViewColumn("Gebietsnummer", "i.area_id", _AREA["description_de"] + _CITY_IN_VIEWS),
    ViewColumn("Gebietsname", "a.area_name", _AREA_NAME["description_de"]),
)
# the long view: i = area_indicators, a = areas, l = area_levels, d = indicators
LONG_VIEW_COLUMNS = (
    *WIDE_VIEW_COLUMNS[:1],
    ViewColumn("Gebietsebene", "l.name_de", "Name der Gebietsebene, z. B. Stadtbezirk (siehe area_levels)."),
    *WIDE_VIEW_COLUMNS[1:],
    ViewColumn("Indikatorschlüssel", "i.indicator_id", _INDICATOR["description_de"]),
    ViewColumn("Indikator", "d.name_de", "Deutsche Bezeichnung des Indikators (siehe indicators)."),
    ViewColumn("Themenfeld", "d.topic_field", "Themenfeld des Berichts, zu dem der Indikator gehört."),
    ViewColumn("Einheit", "d.unit", "Einheit des Werts, z. B. % oder Personen."),
    ViewColumn("Wert", "i.value", _VALUE["description_de"]),
    ViewColumn("Wert Gesamtstadt", "i.city_value", _CITY_VALUE["description_de"]),
    ViewColumn("Zähler", "i.numerator", "Anzahl im Zähler; leer, wenn gesperrt."),
    ViewColumn("Nenner", "i.denominator", "Anzahl im Nenner; leer bei reinen Anzahlen oder wenn gesperrt."),
    ViewColumn("Rang", "i.value_rank", "Rang des Werts unter den Gebieten derselben Gebietsebene im selben "
               "Berichtsjahr (1 = höchster Wert), nur unter den veröffentlichten Werten; siehe area_indicators."),
    ViewColumn("Dezil", "i.value_decile", "Dezil des Werts unter denselben Gebieten (10 = höchste Werte); siehe "
               "area_indicators."),
    ViewColumn("Geheimhaltung", "i.suppression", "Grund der Sperrung (statistische Geheimhaltung) in Worten, leer "
               "wenn nicht gesperrt: {small_count}, {small_population} oder Sekundärsperrung (in area_indicators "
               "als Schlüssel small_count, small_population, secondary)."),
)
# the columns of the views that show a count: whole numbers (BIGINT); a value column is rounded
# (``value_decimals``), a suppressed cell is empty in each
VIEW_COUNT_SOURCES = ("i.numerator", "i.denominator")
VIEW_VALUE_SOURCES = ("i.value", "i.city_value")
VIEW_SUPPRESSED_SOURCES = ("i.value", "i.numerator", "i.denominator", "i.value_rank", "i.value_decile")


def with_area_levels(contract: type[_Published], area_levels: Sequence[str]) -> pa.DataFrameSchema:
    """The contract with the city's levels injected: every column naming a level (``LEVEL_COLUMNS``) must name
    one of ``area_levels`` (the published area_levels, from the city's geography)."""
    schema = contract.to_schema()
    for name in LEVEL_COLUMNS:
        if name in schema.columns:
            column = schema.columns[name]
            schema = schema.update_column(name, checks=[*column.checks, pa.Check.isin(list(area_levels))])
    return schema


@dataclass(frozen=True)
class ColumnDoc:
    name: str
    header_de: str
    description_de: str


@dataclass(frozen=True)
class TableDoc:
    name: str
    title_de: str
    description_de: str
    sheet_de: str  # Excel sheet name (at most 31 characters)
    columns: tuple[ColumnDoc, ...]


def data_dictionary(rule: DisclosureRule | None = None) -> dict[str, TableDoc]:
    """The data dictionary of the published file: table -> German title, description, sheet name and columns
    (in the contract's order) with German header and description. A missing entry is ``""``. The texts that
    describe the disclosure control name the numbers of ``rule`` (the configuration's ``publication``)."""
    describe = (rule or DisclosureRule()).describe_de
    tables = {}
    for table, contract in DOCUMENTED_TABLES.items():
        schema = contract.to_schema()
        columns = tuple(ColumnDoc(name, (column.metadata or {}).get("de", ""),
                                  describe((column.metadata or {}).get("description_de", "")))
                        for name, column in schema.columns.items())
        table_metadata = contract.get_metadata()[contract.__name__].get("dataframe") or {}
        tables[table] = TableDoc(table, schema.title or "", describe(schema.description or ""),
                                 table_metadata.get("sheet_de", ""), columns)
    return tables
