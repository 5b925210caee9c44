{# A number in [0, 1) drawn from a person's pseudonymised key: the first 15 hex digits of its MD5 over 16^15.
   Stable across DuckDB versions and runs (MD5 is fixed; DuckDB's hash() is not), and reproducible outside
   the warehouse (Python: int(hashlib.md5(key.encode()).hexdigest()[:15], 16) / 16**15). Places a person of
   a split base area in one of its successors (int_base_area_successors). #}
{% macro placement_number(person_key) -%}
    (cast('0x' || substr(md5({{ person_key }}), 1, 15) as bigint) / 1152921504606846976.0)
{%- endmacro %}

{#- The rows of ``relation`` (with base_area_id and person_key) that ``where`` keeps, each with the successor of its
    base area on the current version it is placed in (current_base_area_id; null for a base area without one):
    the same rule for every person source. Reads the model's relations ``successors`` (int_base_area_successors)
    and ``split_base_areas`` (the base areas with several successors). The MD5 placement number is computed only
    for a person of a split base area, else 0, which a whole successor's interval [0, 1) holds (at W3 the MD5 of
    every person was a third of int_base_area_counts' time). -#}
{% macro placed_on_current_version(relation, where) -%}
    select placed.*, successors.current_base_area_id
    from (
        select *, case when base_area_id in (select base_area_id from split_base_areas)
            then {{ placement_number('person_key') }} else 0 end as placement_number
        from {{ relation }}
        where {{ where }}
    ) as placed
    left join successors
        on placed.base_area_id = successors.base_area_id
        and placed.placement_number >= successors.placement_lower
        and placed.placement_number < successors.placement_upper
{%- endmacro %}
