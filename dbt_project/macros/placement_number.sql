{# A number in [0, 1) drawn from a person's pseudonymised key: the first 15 hex digits of its MD5 over 16^15.
   Stable across DuckDB versions and runs (MD5 is fixed; DuckDB's hash() is not), and reproducible outside
   the warehouse (Python: int(hashlib.md5(key.encode()).hexdigest()[:15], 16) / 16**15). Places a person of
   a split base area in one of its successors (int_base_area_successors). #}
{% macro placement_number(person_key) -%}
    (cast('0x' || substr(md5({{ person_key }}), 1, 15) as bigint) / 1152921504606846976.0)
{%- endmacro %}

{#- The placement number of a person of a base area split between several successors (the relation
    ``split_base_areas``: base_area_id), else 0, which every whole successor's interval [0, 1) holds: the MD5
    is computed only where it decides something (at W3 it was a third of int_base_area_counts' time). -#}
{% macro placement_number_where_split(person_key, base_area_id) -%}
    case when {{ base_area_id }} in (select base_area_id from split_base_areas)
        then {{ placement_number(person_key) }} else 0 end
{%- endmacro %}

{#- The join condition that places a person (``relation``: base_area_id and its placement_number, from
    placement_number_where_split) in one successor of its base area (the relation ``successors``,
    int_base_area_successors): the same rule for every person source. -#}
{% macro placed_in_successor(relation) -%}
    {{ relation }}.base_area_id = successors.base_area_id
        and {{ relation }}.placement_number >= successors.placement_lower
        and {{ relation }}.placement_number < successors.placement_upper
{%- endmacro %}
