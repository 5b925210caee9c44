{# Whether a register person has a migration background as the city defines it: any of the criteria the
   city declares in config/<city>/city.yml (migration_background), which the pipeline reads once and passes
   as the dbt var `migration_background` (the list of the criteria that apply; social_monitor.settings
   CityConfig.dbt_vars). The criteria's names are checked in Python; their SQL is here. #}
{% macro migration_background_criteria() -%}
    {%- set criteria = var('migration_background', none) -%}
    {%- if execute and criteria is none -%}
        {{ exceptions.raise_compiler_error(
            "dbt var migration_background is not set: the pipeline passes it from config/<city>/city.yml "
            ~ "(migration_background); a dbt call of your own needs --vars with the output of "
            ~ "python -c 'from social_monitor.settings import dbt_vars_json; print(dbt_vars_json())'") }}
    {%- endif -%}
    {{ return(criteria or []) }}
{%- endmacro %}

{% macro has_migration_background() -%}
    {%- set sql = {
        'non_german': "nationality_group <> 'deutsch'",
        'second_nationality': "coalesce(second_nationality_group <> 'deutsch', false)",
        'born_abroad': "birth_country = 'Ausland'",
    } -%}
    {%- set terms = [] -%}
    {%- for criterion in migration_background_criteria() -%}
        {%- if criterion not in sql -%}
            {{ exceptions.raise_compiler_error("migration_background: unknown criterion " ~ criterion) }}
        {%- endif -%}
        {%- do terms.append('(' ~ sql[criterion] ~ ')') -%}
    {%- endfor -%}
    ({{ terms | join(' or ') if terms else 'false' }})
{%- endmacro %}

{# What the counts rest on: the criteria as one text (int_base_area_counts recounts a cycle counted under
   another definition). #}
{% macro migration_background_definition() -%}
    '{{ migration_background_criteria() | sort | join(" ") }}'
{%- endmacro %}
