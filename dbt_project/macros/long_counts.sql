{#- The counts of int_base_area_counts in long form (report_cycle, <area_key>, measure_id, measure_value), keyed
    by the base area on the cycle's own version (base_area_id) or on the current one (current_base_area_id).
    The columns that are not counts are named here once. -#}
{% macro long_counts(area_key) %}
    {%- set other_key = 'current_base_area_id' if area_key == 'base_area_id' else 'base_area_id' -%}
    unpivot (
        select * exclude ({{ other_key }}, deliveries_loaded_at, sgb2_age_bound,
                          migration_background_definition, conversion_stamp)
        from {{ ref('int_base_area_counts') }}
    )
    on columns(* exclude (report_cycle, {{ area_key }}))
    into name measure_id value measure_value
{% endmacro %}
