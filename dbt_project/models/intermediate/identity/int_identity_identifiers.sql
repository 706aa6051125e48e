{#- Unpivots records into identifier occurrences and flags identifiers shared by several people. -#}
with

records as (
    select * from {{ ref('int_identity_records') }}
),

-- The member an e-mail belongs to (CRM profile, logged-in orders), when it belongs to exactly one.
email_members as (
    select email_hash, min(member_id) as member_id
    from records
    where email_hash is not null and member_id is not null
    group by email_hash
    having count(distinct member_id) = 1
),

-- Who a record is: its member, else the member of its e-mail, else the e-mail itself (a guest).
keyed_records as (
    select
        records.*,
        coalesce(
            'member_id:' || records.member_id,
            'member_id:' || email_members.member_id,
            'email:' || records.email_hash
        ) as person_key
    from records
    left join email_members
        on email_members.email_hash = records.email_hash
),

occurrences as (
    select record_key, member_id, person_key, 'member_id' as identifier_type, member_id as identifier_value, first_seen_at, last_seen_at, n_observations from keyed_records where member_id is not null
    union all
    select record_key, member_id, person_key, 'email', email_hash, first_seen_at, last_seen_at, n_observations from keyed_records where email_hash is not null
    union all
    select record_key, member_id, person_key, 'phone', phone_hash, first_seen_at, last_seen_at, n_observations from keyed_records where phone_hash is not null
    union all
    select record_key, member_id, person_key, 'cookie_id', cookie_id, first_seen_at, last_seen_at, n_observations from keyed_records where cookie_id is not null
    union all
    select record_key, member_id, person_key, 'device_id', device_id, first_seen_at, last_seen_at, n_observations from keyed_records where device_id is not null
),

identifiers as (
    select
        identifier_type,
        identifier_value,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at,
        sum(n_observations) as n_observations,
        count(distinct member_id) as n_linked_members,
        count(distinct person_key) as n_linked_people
    from occurrences
    group by identifier_type, identifier_value
),

final as (
    select
        identifier_type,
        identifier_value,
        identifier_type || ':' || identifier_value as node,
        first_seen_at,
        last_seen_at,
        n_observations,
        n_linked_members,
        n_linked_people,
        -- A household tablet or a family e-mail seen with several members would merge those people. A member
        -- may check out without logging in and guests have no member ID: a cookie or device seen with several
        -- people (members, or e-mails of other members or of guests) is a household's too.
        case
            when identifier_type in ('cookie_id', 'device_id')
                then n_linked_members > {{ var('identity_max_members_per_device') }}
                    or n_linked_people > {{ var('identity_max_members_per_device') }}
            when identifier_type in ('email', 'phone')
                then n_linked_members > {{ var('identity_max_members_per_contact') }}
            else false
        end as is_shared
    from identifiers
)

select * from final
