{#- A naive UTC timestamp as the wall clock of var('timezone') (Settings timezone): the same SQL runs on
    DuckDB (ICU) and PostgreSQL. -#}
{% macro local_time(column) -%}
    {{ return(adapter.dispatch('local_time', 'campaign_loop')(column)) }}
{%- endmacro %}

{% macro default__local_time(column) -%}
    (({{ column }} at time zone 'UTC') at time zone '{{ var("timezone") }}')
{%- endmacro %}

{#- Spark: timestamps are read in the session's UTC zone (profiles.yml), so from_utc_timestamp gives the wall clock. -#}
{% macro spark__local_time(column) -%}
    from_utc_timestamp({{ column }}, '{{ var("timezone") }}')
{%- endmacro %}
