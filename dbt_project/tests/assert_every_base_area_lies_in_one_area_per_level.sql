-- In every report cycle every base area lies in exactly one area of every level (the city included), and
-- every membership names an area of the geography: otherwise a level's counts would not add up to the city.
with expected as (
    select count(*) as levels from {{ source('reference', 'area_levels') }}
),

per_base_area as (
    select memberships.report_cycle, memberships.base_area_id, count(distinct memberships.area_level) as levels,
        count(areas.area_id) as known_areas, count(*) as memberships
    from {{ source('reference', 'area_memberships') }} as memberships
    left join (select distinct area_level, area_id from {{ source('reference', 'areas') }}) as areas
        on memberships.area_level = areas.area_level and memberships.area_id = areas.area_id
    group by all
)

select per_base_area.*
from per_base_area
cross join expected
where per_base_area.levels <> expected.levels
    or per_base_area.memberships <> expected.levels
    or per_base_area.known_areas <> per_base_area.memberships
