"""German labels of the codes in the published tables, for the texts people read (report, Excel workbook, CLI).

The published file and its Parquet exports keep the codes (their lists are declared in schemas/published.py);
wherever a person reads a code, it is shown with the label declared here, once. tests/test_exports.py checks that
each mapping covers its code list in the contracts exactly. Labels with ``{name}`` are filled in with the numbers of
the published file's disclosure rule (``DisclosureRule.describe_de``).
"""

from __future__ import annotations

# action_areas.change_since_previous
ACTION_AREA_CHANGE_DE = {"first_cycle": "erstes Berichtsjahr", "kept": "bleibt Aktionsraum",
                         "new": "neuer Aktionsraum", "released": "entlassen", "not_action_area": "kein Aktionsraum"}
# area_classifications.change_since_previous: the flag of a classification method (e.g. besonderer
# Aufmerksamkeitsbedarf)
FLAG_CHANGE_DE = {"first_cycle": "erstes Berichtsjahr", "kept": "bleibt markiert", "new": "neu markiert",
                  "released": "nicht mehr markiert", "not_flagged": "nicht markiert"}
# area_classification_dimensions.class_change
CLASS_CHANGE_DE = {"no_previous": "kein Vorbericht", "same": "gleich", "better": "besser", "worse": "schlechter"}
# indicators.direction
DIRECTION_DE = {"higher_is_worse": "höherer Wert ungünstiger", "higher_is_better": "höherer Wert günstiger",
                "neutral": "ohne Wertung"}
# areas.name_status, area_conversion.weight_status, area_indicators_harmonised.conversion_status
SOURCE_STATUS_DE = {"published": "veröffentlicht", "assumed": "angenommen"}
# area_indicators.suppression: the reason a cell is empty (statistische Geheimhaltung)
SUPPRESSION_REASON_DE = {"small_count": "{small_count}", "small_population": "{small_population}",
                         "secondary": "Sekundärsperrung"}
# the same, as the note on a suppressed cell in the report
SUPPRESSION_DE = {code: f"gesperrt ({reason})" for code, reason in SUPPRESSION_REASON_DE.items()}
# the report's change labels: an action area's, and a classification method's area that is not flagged
CHANGE_DE = {**ACTION_AREA_CHANGE_DE, "not_flagged": FLAG_CHANGE_DE["not_flagged"]}
