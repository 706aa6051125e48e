{#-
    What scoring and the campaign rules read per customer and as-of date (ml/features.py scoring_frame):
    the features, the RFM segment, and the contact history of int_customer_contacts_asof, zero or false
    for a customer without sends. The same rows as fct_customer_features.
-#}
with

features as (
    select * from {{ ref('fct_customer_features') }}
),

contacts as (
    select * from {{ ref('int_customer_contacts_asof') }}
),

final as (
    select
        features.customer_id,
        features.as_of_date,
        features.member_id,
        {{- ml_select('features', ml_feature_columns() + ml_engagement_columns()) }}
        features.member_id is not null as is_member,
        features.rfm_segment as segment,
        cast(coalesce(contacts.contacts_last_30d, 0) as integer) as contacts_last_30d,
        coalesce(contacts.unsubscribed_recently, false) as unsubscribed_recently,
        {%- for channel in var('channels') %}
        coalesce(contacts.bounced_{{ channel }}, false) as bounced_{{ channel }}{{ "," if not loop.last }}
        {%- endfor %}
    from features
    left join contacts
        on contacts.as_of_date = features.as_of_date and contacts.customer_id = features.customer_id
)

select * from final
