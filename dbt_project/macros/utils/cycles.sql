{#- The cycle calendar (start_date + k * cycle_days), mirroring campaign_loop.config.Settings. -#}
{% macro cycle_start_date() -%}
    cast('{{ var("start_date") }}' as date)
{%- endmacro %}

{% macro cycle_days() -%}
    {{ var("cycle_days") | int }}
{%- endmacro %}
