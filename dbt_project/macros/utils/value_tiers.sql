{#- The value tiers of var('value_tiers'), lowest first; bronze (rank 0) is below every threshold. -#}
{% macro value_tier_rank(revenue, orders) -%}
    case
    {%- for tier in var("value_tiers") | reverse %}
        when {{ revenue }} >= {{ tier.revenue_365d }} and {{ orders }} >= {{ tier.orders_365d }} then {{ var("value_tiers") | length - loop.index0 }}
    {%- endfor %}
        else 0
    end
{%- endmacro %}

{% macro value_tier_name(rank) -%}
    case {{ rank }}
        when 0 then 'bronze'
    {%- for tier in var("value_tiers") %}
        when {{ loop.index }} then '{{ tier.name }}'
    {%- endfor %}
    end
{%- endmacro %}
