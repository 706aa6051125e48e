{#- Every column the model's YAML declares with a `not_null` constraint holds no null: one row per column
    that does, with its count of nulls. One query per model, not one per column: dbt spends ~20 ms of
    Python on each test node, and 435 column tests were two thirds of a cycle's `dbt test`. The
    constraint is also enforced by DuckDB and PostgreSQL on contracted models; this test is what checks
    it on every model and engine (Spark's parquet tables and uncontracted models enforce nothing). -#}
{% test not_null_columns(model) %}
    {%- set columns = [] -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values()
            if node.resource_type in ('model', 'snapshot', 'seed')
            and node.alias == model.identifier and node.schema == model.schema -%}
            {%- for column in node.columns.values()
                if column.constraints | selectattr('type', 'equalto', 'not_null') | list -%}
                {%- do columns.append(column.name) -%}
            {%- endfor -%}
        {%- endfor -%}
        {%- if not columns -%}
            {#- A lookup that found nothing would pass silently: it must fail instead. -#}
            {{ exceptions.raise_compiler_error("not_null_columns on " ~ model ~ ": no column of the model declares a not_null constraint") }}
        {%- endif -%}
    {%- endif -%}
    with null_counts as (
        select
        {%- for column in columns %}
            count(*) - count({{ column }}) as {{ column }}__nulls{{ "," if not loop.last }}
        {%- endfor %}
        from {{ model }}
    )
    {%- for column in columns %}
    select '{{ column }}' as column_name, {{ column }}__nulls as null_rows from null_counts where {{ column }}__nulls > 0
    {{ "union all" if not loop.last }}
    {%- endfor %}
{% endtest %}
