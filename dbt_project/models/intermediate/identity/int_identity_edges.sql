{#-
    Undirected identity-graph edges, both directions: each record links its anchor (the first unshared
    identifier by member, email, phone, device, cookie) to its other unshared identifiers.
-#}
with

records as (
    select * from {{ ref('int_identity_records') }}
),

identifiers as (
    select * from {{ ref('int_identity_identifiers') }}
),

occurrences as (
    select record_key, 1 as priority, 'member_id:' || member_id as node from records where member_id is not null
    union all
    select record_key, 2, 'email:' || email_hash from records where email_hash is not null
    union all
    select record_key, 3, 'phone:' || phone_hash from records where phone_hash is not null
    union all
    select record_key, 4, 'device_id:' || device_id from records where device_id is not null
    union all
    select record_key, 5, 'cookie_id:' || cookie_id from records where cookie_id is not null
),

unshared as (
    select
        occurrences.record_key,
        occurrences.node,
        row_number() over (partition by occurrences.record_key order by occurrences.priority) as position
    from occurrences
    inner join identifiers
        on identifiers.node = occurrences.node
    where not identifiers.is_shared
),

anchors as (
    select record_key, node as anchor_node
    from unshared
    where position = 1
),

star as (
    select anchors.anchor_node as node_a, unshared.node as node_b
    from unshared
    inner join anchors
        on anchors.record_key = unshared.record_key
    where unshared.position > 1
),

final as (
    select node_a, node_b from star
    union
    select node_b, node_a from star
)

select * from final
