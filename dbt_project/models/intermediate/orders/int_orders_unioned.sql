{#-
    Online orders and store receipts as one document list, each with its resolved customer. A credit
    note (order_type return or cancellation) that names no customer belongs to its original's.
-#}
with

shop_orders as (
    select * from {{ ref('stg_shop__orders') }}
),

pos_receipts as (
    select * from {{ ref('stg_pos__receipts') }}
),

resolved as (
    select * from {{ ref('int_identity_resolved') }}
),

online as (
    select
        'online:' || shop_orders.order_id as order_key,
        shop_orders.order_id,
        'online' as sales_channel,
        shop_orders.ordered_at,
        -- The strongest identifier wins; a shared device only speaks for its household.
        coalesce(
            by_member.customer_id, by_email.customer_id, by_phone.customer_id,
            by_device.customer_id, by_cookie.customer_id
        ) as customer_id,
        shop_orders.member_id,
        shop_orders.total_amount,
        shop_orders.discount_amount,
        shop_orders.shipping_amount,
        shop_orders.coupon_code,
        shop_orders.status,
        cast(null as {{ type_text() }}) as store_id,
        cast(null as {{ type_text() }}) as payment_method,
        shop_orders.item_count,
        -- Staged before these columns existed (an incremental table kept its old rows): a sale.
        coalesce(shop_orders.order_type, 'sale') as order_type,
        shop_orders.original_order_id,
        'online:' || shop_orders.original_order_id as original_order_key,
        shop_orders.country,
        shop_orders.currency
    from shop_orders
    left join resolved as by_member
        on by_member.identifier_type = 'member_id' and by_member.identifier_value = shop_orders.member_id
    left join resolved as by_email
        on by_email.identifier_type = 'email' and by_email.identifier_value = shop_orders.email_hash
    left join resolved as by_phone
        on by_phone.identifier_type = 'phone' and by_phone.identifier_value = shop_orders.phone_hash
    left join resolved as by_device
        on by_device.identifier_type = 'device_id' and by_device.identifier_value = shop_orders.device_id
    left join resolved as by_cookie
        on by_cookie.identifier_type = 'cookie_id' and by_cookie.identifier_value = shop_orders.cookie_id
),

store as (
    select
        'pos:' || pos_receipts.receipt_id as order_key,
        pos_receipts.receipt_id as order_id,
        'pos' as sales_channel,
        pos_receipts.purchased_at as ordered_at,
        by_member.customer_id,
        pos_receipts.member_id,
        pos_receipts.total_amount,
        pos_receipts.discount_amount,
        cast(0 as decimal(18, 4)) as shipping_amount,
        pos_receipts.coupon_code,
        'placed' as status,
        pos_receipts.store_id,
        pos_receipts.payment_method,
        cast(null as integer) as item_count,
        coalesce(pos_receipts.receipt_type, 'sale') as order_type,
        pos_receipts.original_receipt_id as original_order_id,
        'pos:' || pos_receipts.original_receipt_id as original_order_key,
        pos_receipts.country,
        pos_receipts.currency
    from pos_receipts
    left join resolved as by_member
        on by_member.identifier_type = 'member_id' and by_member.identifier_value = pos_receipts.member_id
),

unioned as (
    select * from online
    union all
    select * from store
),

final as (
    select
        unioned.order_key,
        unioned.order_id,
        unioned.sales_channel,
        unioned.ordered_at,
        case
            when unioned.order_type = 'sale' then unioned.customer_id
            else coalesce(unioned.customer_id, originals.customer_id)
        end as customer_id,
        unioned.member_id,
        unioned.total_amount,
        unioned.discount_amount,
        unioned.shipping_amount,
        unioned.coupon_code,
        unioned.status,
        unioned.store_id,
        unioned.payment_method,
        unioned.item_count,
        unioned.order_type,
        unioned.original_order_id,
        unioned.original_order_key,
        unioned.country,
        unioned.currency
    from unioned
    left join unioned as originals
        on originals.order_key = unioned.original_order_key
)

select * from final
