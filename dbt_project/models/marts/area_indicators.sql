-- Every indicator of the catalogue for every report cycle and area, each cycle on its own geography version,
-- computed from the area's counts (value = scale * numerator / denominator), beside the city value of the
-- same cycle. The indicator SQL is the macro area_indicator_values (shared with area_indicators_harmonised).
{{ area_indicator_values(ref('int_area_measures')) }}
