{#-
    The uplift models' evidence (ml/features.py uplift_frame): one row per measured assignment (treatment
    or control) with the member's customer's features as of the campaign's cycle start. Measured: the
    campaign window ended before the loaded data does. A campaign imported without a cycle_id belongs to
    the cycle its start falls in, so its features are the newest snapshot at or before its start (chosen
    per distinct start, not by an as-of join, which PostgreSQL lacks). Assignments whose customer has no
    feature row that date are left out by the inner join.
-#}
with

sends as (
    select * from {{ ref('fct_action_sends') }}
),

features as (
    select * from {{ ref('fct_customer_features') }}
),

data_end as (
    select max(data_end_at) as data_end_at from {{ ref('fct_customer_labels') }}
),

snapshots as (
    select distinct as_of_date from features
),

unplaced_starts as (
    select distinct starts_at from sends where as_of_date is null
),

placed as (
    select unplaced_starts.starts_at, max(snapshots.as_of_date) as as_of_date
    from unplaced_starts
    inner join snapshots
        on cast(snapshots.as_of_date as timestamp) <= unplaced_starts.starts_at
    group by unplaced_starts.starts_at
),

placed_sends as (
    select
        sends.*,
        coalesce(sends.as_of_date, placed.as_of_date) as features_as_of_date
    from sends
    left join placed
        on placed.starts_at = sends.starts_at
),

final as (
    select
        features.customer_id,
        features.as_of_date,
        {{- ml_select('features', ml_feature_columns() + ml_engagement_columns()) }}
        features.member_id is not null as is_member,
        placed_sends.campaign_id,
        placed_sends.member_id as send_member_id,
        placed_sends.channel,
        placed_sends.offer_type,
        placed_sends.offer_value,
        cast(placed_sends.is_treatment as integer) as treatment,
        placed_sends.assignment_probability,
        cast(placed_sends.is_converted as integer) as is_converted,
        cast(placed_sends.margin as {{ type_double() }}) as margin
    from placed_sends
    cross join data_end
    inner join features
        on features.customer_id = placed_sends.customer_id
        and features.as_of_date = placed_sends.features_as_of_date
    where placed_sends.ends_at < data_end.data_end_at
)

select * from final
