{#-
    Incremental staging over append-only raw tables (docs/warehouse.md#incremental-builds).

    incremental_raw(relation, keys): the raw rows to (re)stage. A full build reads every row; an
    incremental build reads every row of each key (trimmed raw columns `keys`) that has a row loaded
    since the last build, so the model's dedupe (latest loaded wins) sees the key's whole history and
    gives exactly the row a full build gives. Pair it with incremental_strategy='delete+insert' and
    unique_key = the same keys: every staged row of a touched key is replaced.

    The watermark is inclusive (`>=` the newest `loaded_at` already staged): ingest stamps one
    `_loaded_at` on a whole run, so re-reading the newest run is the lookback that covers a build that
    started while that run was still loading files. Late-arriving rows (events sent one batch late) come
    with a later `_loaded_at`, so they are always new rows to this filter whatever their event time.
-#}
{% macro incremental_raw(relation, keys) -%}
    select * from {{ relation }} as raw_rows
    {%- if is_incremental() %}
    where exists (
        select 1
        from {{ relation }} as recent
        where recent._loaded_at >= (select max(loaded_at) from {{ this }})
        {%- for key in keys %}
            and trim(recent.{{ key }}) = trim(raw_rows.{{ key }})
        {%- endfor %}
    )
    {%- endif %}
{%- endmacro %}
