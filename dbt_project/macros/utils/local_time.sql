{#- A naive UTC timestamp as the wall clock of var('timezone') (Settings timezone): the same SQL runs on
    DuckDB (ICU) and PostgreSQL. -#}
{% macro local_time(column) -%}
    (({{ column }} at time zone 'UTC') at time zone '{{ var("timezone") }}')
{%- endmacro %}
