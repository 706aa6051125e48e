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
    Spark has sha2() but no hmac(): HMAC-SHA256 (RFC 2104) built from it, so hashes match DuckDB's and
    PostgreSQL's. The key is read from dbt's environment inside the JVM (reflect on System.getenv, as the
    session runs in dbt's process), so it never appears in SQL, artifacts or Spark's command line. A key
    longer than SHA-256's 64-byte block is hashed first; the padded key (hex) is bound once through
    transform(array(k), ...) and XORed with the ipad/opad bytes 4 at a time.
-#}
{% macro spark__pseudonymize(expr) -%}
    {%- set key = "coalesce(nullif(reflect('java.lang.System', 'getenv', 'CAMPAIGN_LOOP_PII_KEY'), ''), 'campaign-loop-development-key')" -%}
    transform(
        array(rpad(case when octet_length({{ key }}) > 64 then sha2(encode({{ key }}, 'UTF-8'), 256)
                        else hex(encode({{ key }}, 'UTF-8')) end, 128, '0')),
        k -> sha2(concat(
            unhex({{ _spark_xor_pad('k', 1549556828) }}),
            unhex(sha2(concat(unhex({{ _spark_xor_pad('k', 909522486) }}), encode(cast({{ expr }} as string), 'UTF-8')), 256))
        ), 256)
    )[0]
{%- endmacro %}

{#- The 64-byte padded key (128 hex digits) XORed with a repeated pad byte (0x36363636 or 0x5c5c5c5c per 4 bytes). -#}
{% macro _spark_xor_pad(key_hex, pad) -%}
    array_join(transform(sequence(0, 15),
        i -> lpad(hex(cast(conv(substr({{ key_hex }}, 8 * i + 1, 8), 16, 10) as bigint) ^ {{ pad }}), 8, '0')), '')
{%- endmacro %}
