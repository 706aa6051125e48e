{#-
    Staging over append-only raw tables (docs/warehouse.md#incremental-builds).

    Corrections (docs/landing-contract.md#corrections): a file re-sent in the place of an earlier one
    supersedes it, and ingest records that in raw._load_log.superseded_by. Raw keeps both versions;
    staging reads only the rows of live files, so every staging model selects from raw through
    live_raw (views and tables) or incremental_raw (incremental models).

    live_raw(relation): the raw rows of files nobody superseded. A raw schema without a load log (raw
    tables loaded by another tool, as the PostgreSQL parity test does) has no corrections: every row is live.

    incremental_raw(relation, keys): the live raw rows to (re)stage. A full build reads every row; an
    incremental build reads every live row of each key (trimmed raw columns `keys`) that has a row loaded
    since the last build, or a row in a file superseded since then, so the model's dedupe (latest loaded
    wins) sees the key's whole live history and gives exactly the row a full build gives. Pair it with
    incremental_strategy='delete+insert' and unique_key = the same keys: every staged row of a touched key
    is replaced. A key whose every row was in superseded files has nothing left to insert, so
    delete+insert cannot remove it: the post-hook this macro adds (drop_superseded_keys) does.

    The watermark is inclusive (`>=` the newest `loaded_at` already staged): ingest stamps one
    `_loaded_at` on a whole run, so re-reading the newest run is the lookback that covers a build that
    started while that run was still loading files. Late-arriving rows (events sent one batch late) come
    with a later `_loaded_at`, so they are always new rows to this filter whatever their event time.
    An empty target has staged nothing, so its watermark is the start of time, not NULL: a source whose
    first file lands after the first build is staged by the next incremental build.
-#}
{% macro load_log(relation) -%}
    {#- None at parse time and when the raw schema has no load log. -#}
    {%- if not execute -%}{{ return(none) }}{%- endif -%}
    {{ return(adapter.get_relation(database=relation.database, schema=relation.schema, identifier='_load_log')) }}
{%- endmacro %}

{% macro live_rows_filter(alias, log) -%}
    {%- if log is not none %}
        not exists (
            select 1 from {{ log }} as superseded
            where superseded.file_hash = {{ alias }}._file_hash and superseded.superseded_by is not null
        )
    {%- else %}
        1 = 1
    {%- endif %}
{%- endmacro %}

{% macro live_raw(relation) -%}
    select * from {{ relation }} as raw_rows
    where {{ live_rows_filter('raw_rows', load_log(relation)) }}
{%- endmacro %}

{% macro incremental_watermark() -%}
    coalesce((select max(loaded_at) from {{ this }}), cast('1900-01-01 00:00:00' as timestamp))
{%- endmacro %}

{% macro incremental_raw(relation, keys) -%}
    {#- The hook is rendered when the model runs, where source() resolves to the raw table. -#}
    {{ config(post_hook="{{ drop_superseded_keys(" ~ keys ~ ") }}") }}
    {%- set log = load_log(relation) %}
    select * from {{ relation }} as raw_rows
    where {{ live_rows_filter('raw_rows', log) }}
    {%- if is_incremental() %}
    and exists (
        select 1
        from {{ relation }} as recent
        where (
            recent._loaded_at >= {{ incremental_watermark() }}
            {%- if log is not none %}
            or recent._file_hash in (
                select older.file_hash
                from {{ log }} as older
                inner join {{ log }} as newer on newer.file_hash = older.superseded_by
                where newer.loaded_at >= {{ incremental_watermark() }}
            )
            {%- endif %}
        )
        {%- for key in keys %}
            and trim(recent.{{ key }}) = trim(raw_rows.{{ key }})
        {%- endfor %}
    )
    {%- endif %}
{%- endmacro %}

{#-
    Post-hook of incremental_raw's models: delete the staged keys (staged as trimmed raw values) that
    have rows in superseded files and none in live ones. Nothing runs unless the source has a superseded file.
-#}
{% macro drop_superseded_keys(keys) -%}
    {#- Hooks are rendered at parse time too, before the model knows its source. Spark rebuilds these models
        in full from live rows (macros/utils/spark.sql): nothing superseded is left to drop. -#}
    {%- if not execute or target.type == 'spark' -%}{{ return('select 1') }}{%- endif -%}
    {%- set relation = source(*model.sources[0]) -%}
    {%- set log = load_log(relation) -%}
    {%- set superseded = [] -%}
    {%- if log is not none -%}
        {%- set found = run_query(
            "select count(*) from " ~ log ~ " where source = '" ~ relation.identifier ~ "' and superseded_by is not null"
        ) -%}
        {%- do superseded.append(found.columns[0].values()[0] > 0) -%}
    {%- endif -%}
    {%- if superseded and superseded[0] %}
    delete from {{ this }} as staged
    where exists (
        select 1 from {{ relation }} as gone
        where gone._file_hash in (select file_hash from {{ log }} where superseded_by is not null)
        {%- for key in keys %}
            and trim(gone.{{ key }}) = staged.{{ key }}
        {%- endfor %}
    )
    and not exists (
        select 1 from {{ relation }} as live
        where {{ live_rows_filter('live', log) }}
        {%- for key in keys %}
            and trim(live.{{ key }}) = staged.{{ key }}
        {%- endfor %}
    )
    {%- else %}
    select 1
    {%- endif %}
{%- endmacro %}
