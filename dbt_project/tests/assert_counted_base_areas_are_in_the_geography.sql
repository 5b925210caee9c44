-- Every base area with a count is a base area of the geography in its report cycle: int_area_measures adds
-- counts up along the memberships, so a count without one would be dropped from every level.
select counts.report_cycle, counts.base_area_id
from {{ ref('int_base_area_counts') }} as counts
left join {{ source('reference', 'area_memberships') }} as memberships
    on counts.report_cycle = memberships.report_cycle
    and counts.base_area_id = memberships.base_area_id
    and memberships.area_level in (select area_level from {{ source('reference', 'area_levels') }} where is_base)
where memberships.base_area_id is null
