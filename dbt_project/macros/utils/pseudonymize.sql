{#-
    Keyed hash (HMAC-SHA256, hex) of a normalised PII value; null stays null.
    The key never appears in SQL, so compiled code and target/ artifacts cannot leak it:
    - DuckDB: UDF registered by campaign_loop.dbt_duckdb_plugin from env CAMPAIGN_LOOP_PII_KEY.
    - PostgreSQL: pgcrypto hmac() with the server setting campaign_loop.pii_key
      (e.g. PGOPTIONS='-c campaign_loop.pii_key=...' or ALTER ROLE ... SET campaign_loop.pii_key).
    - Spark: hmac() with the key read in the JVM (spark__pseudonymize, below).
    All fall back to the same development key, so the targets agree in development; each refuses a
    retailer's run (CAMPAIGN_LOOP_DEMO false) without a key.
-#}
{% macro pseudonymize(expr) -%}
    {{ return(adapter.dispatch('pseudonymize', 'campaign_loop')(expr)) }}
{%- endmacro %}

{% macro default__pseudonymize(expr) -%}
    campaign_loop_hmac(cast({{ expr }} as {{ type_text() }}))
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

{#-
    The keyed hash of a raw PII column whose value may already be its pseudonym. After a cycle publishes,
    raw PII older than Settings raw_pii_retention_days is replaced in raw by
    'hmac-sha256:<hash>:<tag>' (ingest/retention.py), where <hash> is what staging computed from the clear
    value and <tag> the first 16 hex digits of the keyed hash of 'retained:<hash>'. A rebuild (a late profile
    version, a full refresh) thus stages the same hash from the pseudonym as from the clear value. The tag
    needs the key, so a value an export sends in that form cannot choose its hash (and so whose identity it
    joins): it fails the check and is normalised and hashed like any other value.
-#}
{% macro retained_pseudonym(hash_expr) -%}
    'hmac-sha256:' || {{ hash_expr }} || ':' || substr({{ pseudonymize("'retained:' || " ~ hash_expr) }}, 1, 16)
{%- endmacro %}

{% macro pseudonymize_pii(column, normalized) -%}
    {%- set hash = "substr(" ~ column ~ ", 13, 64)" -%}
    {#- Nested, not `like ... and ... = ...`: the check's keyed hash runs only on values in the pseudonym's form. -#}
    case
        when {{ column }} like 'hmac-sha256:%' then
            case when {{ column }} = {{ retained_pseudonym(hash) }} then {{ hash }} else {{ pseudonymize(normalized) }} end
        else {{ pseudonymize(normalized) }}
    end
{%- endmacro %}

{#-
    Spark (4.3+) has hmac(key, message) over binary values, HMAC-SHA256 by default: hex, lower-cased as
    DuckDB's and PostgreSQL's. The key is read from dbt's environment inside the JVM (reflect on
    System.getenv, as the session runs in dbt's process), so it never appears in SQL, artifacts or Spark's
    command line. reflect() returns a Java null as the string 'null' (the cause of the hashes that once
    differed from DuckDB's: the key was 'null'), so 'null', as '', means unset: the development key.
-#}
{% macro spark__pseudonymize(expr) -%}
    {%- do require_pii_key(env_var('CAMPAIGN_LOOP_PII_KEY', '') != '') -%}
    {%- set env_key = "reflect('java.lang.System', 'getenv', 'CAMPAIGN_LOOP_PII_KEY')" -%}
    {%- set key = "case when " ~ env_key ~ " in ('', 'null') then 'campaign-loop-development-key' else " ~ env_key ~ " end" -%}
    lower(hex(hmac(encode({{ key }}, 'UTF-8'), encode(cast({{ expr }} as string), 'UTF-8'))))
{%- endmacro %}

{#-
    A retailer's run (CAMPAIGN_LOOP_DEMO false) without its own key is refused, as
    campaign_loop.dbt_duckdb_plugin refuses it on DuckDB: Spark reads the key in the JVM and PostgreSQL from
    a server setting, both past every Python check, and would otherwise fall back to the public development
    key without a word. ``key_is_set`` is the engine's own answer (Spark's session runs in dbt's process, so
    dbt's environment is the JVM's). The message is MissingPiiKeyError's.
-#}
{% macro require_pii_key(key_is_set) -%}
    {%- set demo = env_var('CAMPAIGN_LOOP_DEMO', 'true') | trim | lower not in ['0', 'false', 'no', 'off'] -%}
    {%- if execute and not key_is_set and not demo -%}
        {{ exceptions.raise_compiler_error(
            "CAMPAIGN_LOOP_PII_KEY is not set, and this is not a demo run (demo=false): the key pseudonymises "
            ~ "customers' e-mails and phones, and the public development key would let anyone reverse them. "
            ~ "Generate a key once with\n    python -c 'import secrets; print(secrets.token_hex(32))'\n"
            ~ "export it as CAMPAIGN_LOOP_PII_KEY=<key> wherever the loop runs (Airflow's workers included) and "
            ~ "keep it secret and unchanged: a new key changes every hash.") }}
    {%- endif -%}
{%- endmacro %}
