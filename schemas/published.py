"""Contracts of the published marts: the only tables BI tools see.

Every published table must match its model exactly (``strict``): a column that is not in the contract
(a person key, say) fails the publication before the file is swapped in. All tables are aggregates.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

AREA_LEVELS = ["city", "stadtbezirk", "statistischer_bezirk", "sozialraum", "unterbezirk"]
CHANGES = ["first_cycle", "kept", "new", "released", "not_action_area"]
FLAG_CHANGES = ["first_cycle", "kept", "new", "released", "not_flagged"]
CLASS_CHANGES = ["no_previous", "same", "better", "worse"]


class _Published(pa.DataFrameModel):
    class Config:
        strict = True
        coerce = False


class Areas(_Published):
    """Die Gebietsgliederung: every area of every level."""

    area_level: str = pa.Field(isin=AREA_LEVELS)
    area_id: str
    area_name: str
    stadtbezirk_id: str = pa.Field(nullable=True)
    bezirk_id: str = pa.Field(nullable=True)
    sozialraum_id: str = pa.Field(nullable=True)
    name_status: str = pa.Field(isin=["published", "assumed"])

    class Config:
        unique = ["area_level", "area_id"]


class Indicators(_Published):
    """Der Indikatorenkatalog."""

    indicator_id: str = pa.Field(unique=True)
    sort_order: pl.Int32
    name_de: str
    description_de: str = pa.Field(nullable=True)
    numerator_measure: str
    denominator_measure: str = pa.Field(nullable=True)
    unit: str
    scale: pl.Int32
    direction: str = pa.Field(isin=["higher_is_worse", "higher_is_better", "neutral"])
    topic_field: str = pa.Field(nullable=True)


class AreaIndicators(_Published):
    """Indikatoren je Gebiet und Berichtsjahr."""

    report_cycle: pl.Int32
    area_level: str = pa.Field(isin=AREA_LEVELS)
    area_id: str
    indicator_id: str
    numerator: pl.Int64 = pa.Field(nullable=True)
    denominator: pl.Int64 = pa.Field(nullable=True, ge=0)
    value: pl.Float64 = pa.Field(nullable=True)
    city_value: pl.Float64 = pa.Field(nullable=True)
    suppression: str = pa.Field(nullable=True, isin=["small_count", "small_population", "secondary"])

    class Config:
        unique = ["report_cycle", "area_level", "area_id", "indicator_id"]

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


class ActionAreas(_Published):
    """Aktionsräume je Berichtsjahr: one row per cycle and area of the classified level."""

    report_cycle: pl.Int32
    area_level: str
    area_id: str
    area_name: str = pa.Field(nullable=True)
    is_action_area: bool
    change_since_previous: str = pa.Field(isin=CHANGES)
    indicators_worse_count: pl.Int32 = pa.Field(ge=0)
    min_indicators_worse: pl.Int32 = pa.Field(ge=1)
    indicators_worse: str = pa.Field(nullable=True)
    reasons: str = pa.Field(nullable=True)

    class Config:
        unique = ["report_cycle", "area_id"]


class ActionAreaIndicators(_Published):
    """The values behind each classification: the area's value and the city value per rule indicator."""

    report_cycle: pl.Int32
    area_id: str
    indicator_id: str
    value: pl.Float64 = pa.Field(nullable=True)
    city_value: pl.Float64 = pa.Field(nullable=True)
    is_worse: bool
    is_suppressed: bool


class ActionAreaQuartiere(_Published):
    """The Quartiere (Unterbezirke) inside each action area, and whether each is still worse than the city."""

    report_cycle: pl.Int32
    area_id: str
    unterbezirk_id: str
    unterbezirk_name: str = pa.Field(nullable=True)
    indicator_id: str
    value: pl.Float64 = pa.Field(nullable=True)
    city_value: pl.Float64 = pa.Field(nullable=True)
    is_worse_than_city: bool
    is_suppressed: bool


class ClassificationMethods(_Published):
    """Die Klassifikationsverfahren: one row per method, with its full definition (YAML) for traceability."""

    method_id: str = pa.Field(unique=True)
    name_de: str
    area_level: str = pa.Field(isin=AREA_LEVELS)
    description: str
    source: str
    dimensions: str
    flag_label: str = pa.Field(nullable=True)
    min_population: pl.Float64 = pa.Field(ge=0)
    definition_yaml: str
    notes: str = pa.Field(nullable=True)


class AreaClassifications(_Published):
    """Gebietsklassifikation je Verfahren, Berichtsjahr und Gebiet: combined class, flag, change, reasons."""

    method_id: str
    report_cycle: pl.Int32
    area_id: str
    area_name: str = pa.Field(nullable=True)
    population: pl.Float64 = pa.Field(nullable=True, ge=0)
    is_included: bool
    exclusion_reason: str = pa.Field(nullable=True)
    combined_class: str = pa.Field(nullable=True)
    is_flagged: bool = pa.Field(nullable=True)
    change_since_previous: str = pa.Field(nullable=True, isin=FLAG_CHANGES)
    is_fragile: bool = pa.Field(nullable=True)
    reasons: str = pa.Field(nullable=True)

    class Config:
        unique = ["method_id", "report_cycle", "area_id"]


class AreaClassificationDimensions(_Published):
    """Index and class of each dimension (Status, Dynamik …), the previous class and the distance to a border."""

    method_id: str
    report_cycle: pl.Int32
    area_id: str
    dimension_id: str
    indicator_count: pl.Int32 = pa.Field(ge=1)
    raw_index: pl.Float64
    index_value: pl.Float64
    class_code: pl.Int32
    class_label: str
    previous_cycle: pl.Int32 = pa.Field(nullable=True)
    previous_class_code: pl.Int32 = pa.Field(nullable=True)
    class_change: str = pa.Field(isin=CLASS_CHANGES)
    distance_to_border: pl.Float64 = pa.Field(ge=0)
    is_fragile: bool
    alternative_class_code: pl.Int32 = pa.Field(nullable=True)

    class Config:
        unique = ["method_id", "report_cycle", "area_id", "dimension_id"]


class AreaClassificationIndicators(_Published):
    """The inputs of every index: value, mean, SD, standardised value, weight and contribution per indicator."""

    method_id: str
    report_cycle: pl.Int32
    area_id: str
    dimension_id: str
    indicator_id: str
    source_indicator_id: str
    value: pl.Float64 = pa.Field(nullable=True)
    city_value: pl.Float64 = pa.Field(nullable=True)
    mean: pl.Float64
    sd: pl.Float64 = pa.Field(nullable=True)
    standardised: pl.Float64 = pa.Field(nullable=True)
    weight: pl.Float64 = pa.Field(gt=0)
    contribution: pl.Float64 = pa.Field(nullable=True)
    is_suppressed: bool

    class Config:
        unique = ["method_id", "report_cycle", "area_id", "dimension_id", "indicator_id"]


class Publication(_Published):
    """One row per published table: when, what and how many rows."""

    table_name: str
    row_count: pl.Int64 = pa.Field(ge=0)
    published_at: pl.Datetime
    report_cycles: str
    city_name: str


# published table name -> (source table in the warehouse, contract)
PUBLISHED_TABLES: dict[str, tuple[str, type[_Published]]] = {
    "areas": ("marts.areas", Areas),
    "indicators": ("marts.indicators", Indicators),
    "area_indicators": ("marts.area_indicators", AreaIndicators),
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
