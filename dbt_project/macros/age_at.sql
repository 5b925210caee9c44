{# Completed years of age on a date (the birthday counts from its day on). Integer arithmetic on the date
   parts: the same result as comparing 'MMDD' strings, without formatting two strings per person. #}
{% macro age_at(birth_date, on_date) -%}
    (year({{ on_date }}) - year({{ birth_date }})
        - case when month({{ on_date }}) * 100 + day({{ on_date }})
            < month({{ birth_date }}) * 100 + day({{ birth_date }}) then 1 else 0 end)
{%- endmacro %}
