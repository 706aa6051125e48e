{#-
    Spark (dbt-spark, parquet tables in a Hive metastore): what differs from DuckDB and PostgreSQL.
    See docs/warehouse.md#spark.

    Parquet tables have no DELETE, so the delete+insert incremental strategy the staging models use has no
    Spark equivalent short of Delta or Iceberg (whose jars would be downloaded at run time). On Spark every
    incremental model is rebuilt in full each build, as --full-refresh does elsewhere, and is_incremental()
    is false there, so no model filters its input down to new rows. int_identity_merges, an append-only
    log elsewhere, then holds only the current build's assignments.
-#}
{% materialization incremental, adapter='spark' -%}
    {%- set existing = load_relation(this) -%}
    {{ run_hooks(pre_hooks) }}
    {%- if existing is not none -%}
        {%- do adapter.drop_relation(existing) -%}
    {%- endif -%}
    {%- call statement('main') -%}
        {{ create_table_as(False, this, compiled_code) }}
    {%- endcall -%}
    {%- do persist_docs(this, model) -%}
    {{ run_hooks(post_hooks) }}
    {{ return({'relations': [this]}) }}
{%- endmaterialization %}

{#- dbt's own is_incremental(), except on Spark, whose incremental models are full rebuilds (above). -#}
{% macro is_incremental() -%}
    {%- if target.type == 'spark' -%}
        {{ return(false) }}
    {%- endif -%}
    {{ return(dbt.is_incremental()) }}
{%- endmacro %}

{#- Column types: Spark has neither an unsized varchar nor float8. -#}
{% macro type_text() -%}
    {{ return(adapter.dispatch('type_text', 'campaign_loop')()) }}
{%- endmacro %}

{% macro default__type_text() -%}varchar{%- endmacro %}

{% macro spark__type_text() -%}string{%- endmacro %}

{#- An 8-byte float (dbt's type_float is DuckDB's 4-byte FLOAT). -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'campaign_loop')()) }}
{%- endmacro %}

{% macro default__type_double() -%}float8{%- endmacro %}

{% macro spark__type_double() -%}double{%- endmacro %}

{#- Whole seconds since 1970-01-01 of a naive timestamp. -#}
{% macro epoch_seconds(expr) -%}
    {{ return(adapter.dispatch('epoch_seconds', 'campaign_loop')(expr)) }}
{%- endmacro %}

{% macro default__epoch_seconds(expr) -%}
    cast(extract(epoch from {{ expr }}) as bigint)
{%- endmacro %}

{#- The session's time zone is UTC (profiles.yml), so a naive timestamp is read unshifted. -#}
{% macro spark__epoch_seconds(expr) -%}
    cast(unix_timestamp({{ expr }}) as bigint)
{%- endmacro %}

{#- Every match replaced (PostgreSQL replaces only the first unless flagged 'g'; Spark's 4th argument is a position). -#}
{% macro regexp_replace_all(expr, pattern, replacement) -%}
    {{ return(adapter.dispatch('regexp_replace_all', 'campaign_loop')(expr, pattern, replacement)) }}
{%- endmacro %}

{% macro default__regexp_replace_all(expr, pattern, replacement) -%}
    regexp_replace({{ expr }}, {{ pattern }}, {{ replacement }}, 'g')
{%- endmacro %}

{% macro spark__regexp_replace_all(expr, pattern, replacement) -%}
    regexp_replace({{ expr }}, {{ pattern }}, {{ replacement }})
{%- endmacro %}

{#-
    dbt-spark's dateadd goes through unix seconds and raises on a null timestamp (assert_not_null), which the
    sessionisation's lag() gives on a visitor's first event: Spark's own timestampadd keeps null null.
-#}
{% macro spark__dateadd(datepart, interval, from_date_or_timestamp) -%}
    timestampadd({{ datepart }}, {{ interval }}, {{ from_date_or_timestamp }})
{%- endmacro %}

{#-
    dbt's cast, which model contracts cast their YAML data_type with: the contracts name PostgreSQL/DuckDB
    types (varchar, float8), which Spark spells string and double.
-#}
{% macro spark__cast(field, type) -%}
    {%- set spark_types = {'varchar': 'string', 'text': 'string', 'float8': 'double', 'double precision': 'double'} -%}
    cast({{ field }} as {{ spark_types.get(type | trim | lower, type) }})
{%- endmacro %}

{#-
    The values of a group joined by a separator, ordered by order_by (ascending keys, comma-separated; null
    values skipped): the ordered string_agg of PostgreSQL and DuckDB, Spark's listagg ... within group.
-#}
{% macro string_agg_ordered(expr, separator, order_by) -%}
    {{ return(adapter.dispatch('string_agg_ordered', 'campaign_loop')(expr, separator, order_by)) }}
{%- endmacro %}

{% macro default__string_agg_ordered(expr, separator, order_by) -%}
    string_agg({{ expr }}, {{ separator }} order by {{ order_by }})
{%- endmacro %}

{#- Spark sorts nulls first in ascending order, PostgreSQL and DuckDB last: each key says nulls last. -#}
{% macro spark__string_agg_ordered(expr, separator, order_by) -%}
    {%- set keys = order_by.split(',') | map('trim') | join(' nulls last, ') -%}
    listagg({{ expr }}, {{ separator }}) within group (order by {{ keys }} nulls last)
{%- endmacro %}
