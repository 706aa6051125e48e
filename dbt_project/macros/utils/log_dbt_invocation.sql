{#- One row per dbt invocation in audit.dbt_invocations; the cycle's pipeline fills cycle_id afterwards. -#}
{% macro log_dbt_invocation() -%}
    {%- if execute -%}
        {%- set failures = results | selectattr('status', 'in', ['error', 'fail']) | list | length -%}
        {%- do run_query('create schema if not exists audit') -%}
        {%- do run_query(dbt_invocations_ddl()) -%}
        insert into audit.dbt_invocations
        values ('{{ invocation_id }}', '{{ run_started_at }}', '{{ flags.WHICH }}', '{{ target.name }}',
                {{ results | length }}, {{ failures }}, null)
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{#- The log's table: only its DDL differs between engines. -#}
{% macro dbt_invocations_ddl() -%}
    {{ return(adapter.dispatch('dbt_invocations_ddl', 'campaign_loop')()) }}
{%- endmacro %}

{% macro default__dbt_invocations_ddl() -%}
    create table if not exists audit.dbt_invocations (
        invocation_id varchar(64) not null, run_started_at varchar(64) not null,
        command varchar(32), target_name varchar(32), nodes integer, failures integer, cycle_id varchar(32))
{%- endmacro %}

{#- Spark: no NOT NULL on a parquet table's columns, and an unsized varchar is not a type. -#}
{% macro spark__dbt_invocations_ddl() -%}
    create table if not exists audit.dbt_invocations (
        invocation_id string, run_started_at string, command string, target_name string,
        nodes integer, failures integer, cycle_id string) using parquet
{%- endmacro %}
