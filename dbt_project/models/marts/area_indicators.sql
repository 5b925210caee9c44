-- Every indicator of the catalogue for every report cycle and area, each cycle on its own geography version,
-- computed from the area's counts (value = scale * numerator / denominator), beside the city value of the
-- same cycle; a change of an indicator (catalogue column change_of_indicator) since the previous cycle, for a
-- cycle on the current version against the previous cycle restated on it (from area_indicators_harmonised).
-- The indicator SQL is the macro area_indicator_values (shared with area_indicators_harmonised).
{{ area_indicator_values(ref('int_area_measures'), ref('area_indicators_harmonised')) }}
