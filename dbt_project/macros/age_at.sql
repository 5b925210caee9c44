{# Completed years of age on a date (the birthday counts from its day on). #}
{% macro age_at(birth_date, on_date) -%}
    (date_diff('year', {{ birth_date }}, {{ on_date }})
        - case when strftime({{ on_date }}, '%m%d') < strftime({{ birth_date }}, '%m%d') then 1 else 0 end)
{%- endmacro %}
