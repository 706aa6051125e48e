{#- Every row satisfies a SQL boolean expression (optionally prefixed by the column it is attached to). -#}
{% test expression_is_true(model, expression, column_name=none) %}
    select *
    from {{ model }}
    where not ({% if column_name %}{{ column_name }} {% endif %}{{ expression }})
{% endtest %}
