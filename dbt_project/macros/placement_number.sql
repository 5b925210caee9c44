{# A number in [0, 1) drawn from a person's pseudonymised key: the first 15 hex digits of its MD5 over 16^15.
   Stable across DuckDB versions and runs (MD5 is fixed; DuckDB's hash() is not), and reproducible outside
   the warehouse (Python: int(hashlib.md5(key.encode()).hexdigest()[:15], 16) / 16**15). Places a person of
   a split base area in one of its successors (int_base_area_successors). #}
{% macro placement_number(person_key) -%}
    (cast('0x' || substr(md5({{ person_key }}), 1, 15) as bigint) / 1152921504606846976.0)
{%- endmacro %}

{#- The join condition that places a person (``relation``: base_area_id, person_key) in one successor of its base
    area (the relation ``successors``, int_base_area_successors): the same rule for every person source. -#}
{% macro placed_in_successor(relation) -%}
    {{ relation }}.base_area_id = successors.base_area_id
        and {{ placement_number(relation ~ '.person_key') }} >= successors.placement_lower
        and {{ placement_number(relation ~ '.person_key') }} < successors.placement_upper
{%- endmacro %}
