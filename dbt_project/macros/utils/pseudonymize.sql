{#-
    Keyed hash (HMAC-SHA256, hex) of a normalised PII value; null stays null.
    The key never appears in SQL, so compiled code and target/ artifacts cannot leak it:
    - DuckDB: UDF registered by campaign_loop.dbt_duckdb_plugin from env CAMPAIGN_LOOP_PII_KEY.
    - PostgreSQL: pgcrypto hmac() with the server setting campaign_loop.pii_key
      (e.g. PGOPTIONS='-c campaign_loop.pii_key=...' or ALTER ROLE ... SET campaign_loop.pii_key).
    Both fall back to the same development key, so the targets agree in development.
-#}
{% macro pseudonymize(expr) -%}
    {{ return(adapter.dispatch('pseudonymize', 'campaign_loop')(expr)) }}
{%- endmacro %}

{% macro default__pseudonymize(expr) -%}
    campaign_loop_hmac(cast({{ expr }} as varchar))
{%- endmacro %}

{% macro postgres__pseudonymize(expr) -%}
    encode(
        hmac(
            convert_to(cast({{ expr }} as text), 'UTF8'),
            convert_to(coalesce(nullif(current_setting('campaign_loop.pii_key', true), ''), 'campaign-loop-development-key'), 'UTF8'),
            'sha256'
        ),
        'hex'
    )
{%- endmacro %}
