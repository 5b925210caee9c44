-- Every area of every level with its name and the areas it belongs to.
with hierarchy as (
    select * from {{ ref('int_area_hierarchy') }}
)

select 'city' as area_level, 'city' as area_id, 'Gesamtstadt' as area_name,
    cast(null as varchar) as stadtbezirk_id, cast(null as varchar) as bezirk_id,
    cast(null as varchar) as sozialraum_id, 'published' as name_status
union all
select 'stadtbezirk', stadtbezirk_id, stadtbezirk_name, stadtbezirk_id, null, null, name_status
from {{ ref('stadtbezirke') }}
union all
select 'statistischer_bezirk', bezirk_id, bezirk_name, stadtbezirk_id, bezirk_id, null, name_status
from {{ ref('statistische_bezirke') }}
union all
select 'sozialraum', sozialraum_id, sozialraum_name, null, null, sozialraum_id, name_status
from {{ ref('sozialraeume') }}
union all
select 'unterbezirk', hierarchy.unterbezirk_id, hierarchy.unterbezirk_name, hierarchy.stadtbezirk_id,
    hierarchy.bezirk_id, hierarchy.sozialraum_id, unterbezirke.name_status
from hierarchy
inner join {{ ref('unterbezirke') }} as unterbezirke
    on hierarchy.unterbezirk_id = unterbezirke.unterbezirk_id
