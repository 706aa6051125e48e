{#-
    Connected components by min-label propagation, unrolled into var('identity_label_passes') passes
    (portable: no recursive CTE, which DuckDB and PostgreSQL bound differently). The label sorts members
    first, then the oldest identifier, so a customer keeps its ID when new identifiers attach to it.
-#}
with

identifiers as (
    select * from {{ ref('int_identity_identifiers') }}
),

edges as (
    select * from {{ ref('int_identity_edges') }}
),

graph as (
    select node_a, node_b from edges
    union all
    select node, node from identifiers
),

labels_0 as (
    select
        node,
        case when identifier_type = 'member_id' then '0' else '1' end
            || {{ sortable_timestamp("coalesce(first_seen_at, cast('2999-12-31' as timestamp))") }} || '|' || node as label
    from identifiers
),

{% for pass in range(1, var('identity_label_passes') + 1) %}
labels_{{ pass }} as (
    select graph.node_a as node, min(labels_{{ pass - 1 }}.label) as label
    from graph
    inner join labels_{{ pass - 1 }}
        on labels_{{ pass - 1 }}.node = graph.node_b
    group by graph.node_a
),
{% endfor %}

components as (
    select
        node,
        -- The label's tail is the winning node: hashing it alone keeps the ID independent of timestamps.
        substr(label, 15) as root_node
    from labels_{{ var('identity_label_passes') }}
),

component_sizes as (
    select
        components.root_node,
        count(*) as n_identifiers,
        sum(case when identifiers.identifier_type = 'member_id' then 1 else 0 end) as n_members
    from components
    inner join identifiers
        on identifiers.node = components.node
    group by components.root_node
),

final as (
    select
        identifiers.identifier_type,
        identifiers.identifier_value,
        'C' || substr({{ dbt.hash('components.root_node') }}, 1, 16) as customer_id,
        components.root_node,
        identifiers.is_shared,
        identifiers.first_seen_at,
        identifiers.last_seen_at,
        identifiers.n_observations,
        component_sizes.n_identifiers as component_identifiers,
        component_sizes.n_members as component_members,
        component_sizes.n_members > {{ var('identity_oversized_members') }} as is_oversized_component
    from identifiers
    inner join components
        on components.node = identifiers.node
    inner join component_sizes
        on component_sizes.root_node = components.root_node
)

select * from final
