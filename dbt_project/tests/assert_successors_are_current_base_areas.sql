-- Every successor of a base area is a base area of the current geography version (the latest report cycle):
-- the conversion is onto the latest version only. A row here is a retired base area converted onto one that
-- is not valid in the latest cycle (a chain of reforms, which is not composed) and would drop its persons
-- from the harmonised series.
select successors.base_area_id, successors.current_base_area_id
from {{ ref('int_base_area_successors') }} as successors
where successors.current_base_area_id not in (
    select base_area_id
    from {{ source('reference', 'area_memberships') }}
    where report_cycle = (select max(report_cycle) from {{ ref('int_report_cycles') }})
)
