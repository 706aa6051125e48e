{#- Label propagation ran enough passes: no edge joins two different customers. -#}
with

edges as (
    select * from {{ ref('int_identity_edges') }}
),

resolved as (
    select identifier_type || ':' || identifier_value as node, customer_id
    from {{ ref('int_identity_resolved') }}
)

select edges.node_a, edges.node_b, a.customer_id as customer_a, b.customer_id as customer_b
from edges
inner join resolved as a on a.node = edges.node_a
inner join resolved as b on b.node = edges.node_b
where a.customer_id <> b.customer_id
