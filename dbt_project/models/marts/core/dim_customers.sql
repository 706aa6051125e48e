with

resolved as (
    select * from {{ ref('int_identity_resolved') }}
),

crm_customers as (
    select * from {{ ref('stg_crm__customers') }}
),

consents as (
    select * from {{ ref('stg_crm__consents') }}
),

orders as (
    select * from {{ ref('fct_orders') }}
),

order_lines as (
    select * from {{ ref('fct_order_lines') }}
),

reviews as (
    select * from {{ ref('stg_shop__reviews') }}
),

identity as (
    select
        customer_id,
        min(root_node) as root_node,
        count(case when identifier_type = 'member_id' then 1 end) as n_member_ids,
        count(case when identifier_type = 'cookie_id' then 1 end) as n_cookies,
        count(case when identifier_type = 'device_id' then 1 end) as n_devices,
        count(case when identifier_type = 'email' then 1 end) as n_emails,
        count(case when identifier_type = 'phone' then 1 end) as n_phones,
        bool_or(is_shared) as is_shared_identifier,
        bool_or(is_oversized_component) as is_oversized,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at,
        -- The root is the oldest member when there is one; min() only breaks ties among later ones.
        coalesce(
            min(case when identifier_type = 'member_id' and 'member_id:' || identifier_value = root_node then identifier_value end),
            min(case when identifier_type = 'member_id' then identifier_value end)
        ) as member_id
    from resolved
    group by customer_id
),

latest_consents as (
    select
        member_id,
        channel,
        is_opted_in,
        row_number() over (partition by member_id, channel order by changed_at desc, loaded_at desc) as recency_rank
    from consents
),

consent_flags as (
    select
        member_id,
        bool_or(case when channel = 'email' then is_opted_in end) as consent_email,
        bool_or(case when channel = 'push' then is_opted_in end) as consent_push,
        bool_or(case when channel = 'sms' then is_opted_in end) as consent_sms,
        bool_or(case when channel = 'kakao' then is_opted_in end) as consent_kakao
    from latest_consents
    where recency_rank = 1
    group by member_id
),

order_totals as (
    select
        customer_id,
        count(*) as lifetime_orders,
        count(case when sales_channel = 'online' then 1 end) as online_orders,
        count(case when sales_channel = 'pos' then 1 end) as pos_orders,
        sum(total_amount) as lifetime_revenue,
        sum(case when sales_channel = 'online' then total_amount else 0 end) as online_revenue,
        sum(case when sales_channel = 'pos' then total_amount else 0 end) as pos_revenue,
        sum(margin_amount) as lifetime_margin,
        count(case when discount_amount > 0 or coupon_code is not null then 1 end) as discounted_orders,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at
    from orders
    where is_revenue and customer_id is not null
    group by customer_id
),

return_totals as (
    select
        customer_id,
        count(*) as lifetime_returns,
        sum(total_amount) as lifetime_returned_amount
    from orders
    where is_return and customer_id is not null
    group by customer_id
),

review_totals as (
    select
        member_id,
        count(*) as review_count,
        avg(cast(rating as {{ dbt.type_float() }})) as average_rating,
        max(reviewed_at) as last_reviewed_at
    from reviews
    where member_id is not null
    group by member_id
),

category_spend as (
    select
        customer_id,
        category,
        row_number() over (partition by customer_id order by sum(net_amount) desc, category) as spend_rank
    from order_lines
    where customer_id is not null and category is not null and order_type = 'sale'
    group by customer_id, category
),

final as (
    select
        identity.customer_id,
        identity.member_id,
        identity.member_id is not null as is_member,
        cast(identity.n_member_ids as integer) as n_member_ids,
        cast(identity.n_cookies as integer) as n_cookies,
        cast(identity.n_devices as integer) as n_devices,
        cast(identity.n_emails as integer) as n_emails,
        cast(identity.n_phones as integer) as n_phones,
        identity.is_shared_identifier,
        identity.is_oversized,
        identity.first_seen_at,
        identity.last_seen_at,
        crm_customers.email_hash,
        crm_customers.phone_hash,
        crm_customers.full_name_hash,
        cast(crm_customers.birth_year as integer) as birth_year,
        crm_customers.gender,
        crm_customers.city,
        crm_customers.country,
        crm_customers.loyalty_tier,
        crm_customers.signup_at,
        consent_flags.consent_email,
        consent_flags.consent_push,
        consent_flags.consent_sms,
        consent_flags.consent_kakao,
        cast(coalesce(order_totals.lifetime_orders, 0) as integer) as lifetime_orders,
        cast(coalesce(order_totals.online_orders, 0) as integer) as online_orders,
        cast(coalesce(order_totals.pos_orders, 0) as integer) as pos_orders,
        cast(coalesce(order_totals.lifetime_revenue, 0) as decimal(18, 4)) as lifetime_revenue,
        cast(coalesce(order_totals.online_revenue, 0) as decimal(18, 4)) as online_revenue,
        cast(coalesce(order_totals.pos_revenue, 0) as decimal(18, 4)) as pos_revenue,
        cast(order_totals.lifetime_margin as decimal(18, 4)) as lifetime_margin,
        cast(coalesce(return_totals.lifetime_returns, 0) as integer) as lifetime_returns,
        cast(coalesce(return_totals.lifetime_returned_amount, 0) as decimal(18, 4)) as lifetime_returned_amount,
        cast(coalesce(order_totals.lifetime_revenue, 0) - coalesce(return_totals.lifetime_returned_amount, 0)
            as decimal(18, 4)) as lifetime_net_revenue,
        order_totals.first_order_at,
        order_totals.last_order_at,
        case
            when order_totals.lifetime_orders is null then null
            when order_totals.online_orders >= order_totals.pos_orders then 'online'
            else 'pos'
        end as preferred_sales_channel,
        category_spend.category as preferred_category,
        cast(coalesce(order_totals.discounted_orders, 0) as integer) as discounted_orders,
        -- How a customer buys, beside RFM's how recently, often and much. Deal seekers first: a discount
        -- share of half or more says more about what moves them than where they shop.
        case
            when order_totals.lifetime_orders is null then 'prospect'
            when order_totals.discounted_orders * 2 >= order_totals.lifetime_orders then 'deal_seeker'
            when order_totals.online_orders > 0 and order_totals.pos_orders > 0 then 'omnichannel'
            when order_totals.online_orders > 0 then 'online_only'
            else 'store_only'
        end as behaviour_segment,
        cast(coalesce(review_totals.review_count, 0) as integer) as review_count,
        cast(review_totals.average_rating as {{ type_double() }}) as average_rating,
        review_totals.last_reviewed_at
    from identity
    left join crm_customers
        on crm_customers.member_id = identity.member_id
    left join consent_flags
        on consent_flags.member_id = identity.member_id
    left join order_totals
        on order_totals.customer_id = identity.customer_id
    left join return_totals
        on return_totals.customer_id = identity.customer_id
    left join review_totals
        on review_totals.member_id = identity.member_id
    left join category_spend
        on category_spend.customer_id = identity.customer_id and category_spend.spend_rank = 1
)

select * from final
