-- One row per Unterbezirk with every area it belongs to: statistischer Bezirk, Stadtbezirk, Sozialraum.
select
    unterbezirke.unterbezirk_id,
    unterbezirke.unterbezirk_name,
    unterbezirke.bezirk_id,
    bezirke.bezirk_name,
    bezirke.stadtbezirk_id,
    stadtbezirke.stadtbezirk_name,
    unterbezirke.sozialraum_id,
    sozialraeume.sozialraum_name
from {{ ref('unterbezirke') }} as unterbezirke
inner join {{ ref('statistische_bezirke') }} as bezirke
    on unterbezirke.bezirk_id = bezirke.bezirk_id
inner join {{ ref('stadtbezirke') }} as stadtbezirke
    on bezirke.stadtbezirk_id = stadtbezirke.stadtbezirk_id
inner join {{ ref('sozialraeume') }} as sozialraeume
    on unterbezirke.sozialraum_id = sozialraeume.sozialraum_id
