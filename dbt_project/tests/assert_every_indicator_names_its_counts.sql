-- Every indicator names the count it is computed from (numerator_measure), except a change of an indicator
-- (catalogue column change_of_indicator: the indicator minus its value in the previous report cycle), which
-- names no counts and must name an indicator of the catalogue that does. Rows returned are failures.
select indicators.indicator_id
from {{ ref('indicators') }} as indicators
inner join {{ ref('indicator_catalogue') }} as catalogue using (indicator_id)
left join {{ ref('indicator_catalogue') }} as source
    on source.indicator_id = catalogue.change_of_indicator
where (catalogue.change_of_indicator is null and indicators.numerator_measure is null)
    or (catalogue.change_of_indicator is not null
        and (indicators.numerator_measure is not null or source.numerator_measure is null))
