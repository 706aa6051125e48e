{% macro campaign_loop_on_run_start() -%}
    {%- if execute and env_var('CAMPAIGN_LOOP_PII_KEY', '') == '' -%}
        {{ log("WARNING: CAMPAIGN_LOOP_PII_KEY is not set; PII is pseudonymised with the development key.", info=True) }}
    {%- endif -%}
    {{ return(adapter.dispatch('campaign_loop_on_run_start', 'campaign_loop')()) }}
{%- endmacro %}

{% macro default__campaign_loop_on_run_start() -%}
    select 1
{%- endmacro %}

{#- pgcrypto provides hmac(); the key itself comes from the server setting campaign_loop.pii_key. -#}
{% macro postgres__campaign_loop_on_run_start() -%}
    create extension if not exists pgcrypto
{%- endmacro %}
