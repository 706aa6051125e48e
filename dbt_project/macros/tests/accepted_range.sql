{#- Values lie in [min_value, max_value] (inclusive unless inclusive=false); nulls pass. -#}
{% test accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true, where=none) %}
    {%- set lo = '>=' if inclusive else '>' -%}
    {%- set hi = '<=' if inclusive else '<' -%}
    select *
    from {{ model }}
    where {{ column_name }} is not null
      and not (
        1 = 1
        {%- if min_value is not none %} and {{ column_name }} {{ lo }} {{ min_value }}{% endif %}
        {%- if max_value is not none %} and {{ column_name }} {{ hi }} {{ max_value }}{% endif %}
      )
{% endtest %}
