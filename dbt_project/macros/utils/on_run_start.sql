{% macro campaign_loop_on_run_start() -%}
    {%- if execute and env_var('CAMPAIGN_LOOP_PII_KEY', '') == '' -%}
        {{ log("WARNING: CAMPAIGN_LOOP_PII_KEY is not set; PII is pseudonymised with the development key.", info=True) }}
    {%- endif -%}
    {%- do rename_legacy_relations() -%}
    {{ return(adapter.dispatch('campaign_loop_on_run_start', 'campaign_loop')()) }}
{%- endmacro %}

{% macro default__campaign_loop_on_run_start() -%}
    select 1
{%- endmacro %}

{#- Spark: a retailer's run without its key stops before any model, as DuckDB's plugin stops it at connect. -#}
{% macro spark__campaign_loop_on_run_start() -%}
    {%- do require_pii_key(env_var('CAMPAIGN_LOOP_PII_KEY', '') != '') -%}
    select 1
{%- endmacro %}

{#- pgcrypto provides hmac(); the key itself comes from the server setting campaign_loop.pii_key, which only the
    server can tell is set: a retailer's run without it stops here, before any model. -#}
{% macro postgres__campaign_loop_on_run_start() -%}
    {%- if execute -%}
        {%- set key = run_query("select coalesce(current_setting('campaign_loop.pii_key', true), '')") -%}
        {%- do require_pii_key(key.columns[0].values()[0] != '') -%}
    {%- endif -%}
    create extension if not exists pgcrypto
{%- endmacro %}

{#-
    Models renamed to int_<entity>_<what> (docs/warehouse.md#names): a warehouse built before keeps its
    relations under the old names. The append-only log int_identity_merges cannot be rebuilt from raw and
    int_web_sessions is incremental, so each old relation moves to its new name once, before any model runs,
    unless the new one exists already; the others are tables every build replaces.
-#}
{% macro rename_legacy_relations() -%}
    {%- if execute -%}
        {%- set schema = generate_schema_name('intermediate', none) -%}
        {%- set renamed = {
            'int_identity__records': 'int_identity_records',
            'int_identity__identifiers': 'int_identity_identifiers',
            'int_identity__edges': 'int_identity_edges',
            'int_identity__resolved': 'int_identity_resolved',
            'int_identity__merges': 'int_identity_merges',
            'int_web__sessions': 'int_web_sessions',
        } -%}
        {%- for old, new in renamed.items() -%}
            {%- set old_relation = adapter.get_relation(database=target.database, schema=schema, identifier=old) -%}
            {%- if old_relation is not none
                    and adapter.get_relation(database=target.database, schema=schema, identifier=new) is none -%}
                {%- do adapter.rename_relation(old_relation, old_relation.incorporate(path={'identifier': new})) -%}
                {#- The rename opened a transaction (PostgreSQL): the hook's own statement would not commit it. -#}
                {%- do adapter.commit() -%}
                {{ log("Renamed " ~ old_relation ~ " to " ~ new ~ " (docs/warehouse.md#names).", info=True) }}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}
