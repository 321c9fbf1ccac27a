-- Orders of one day: each task owns the rows whose order_ts lies in its interval.
with priced as (
    select
        o.order_id,
        o.customer_id,
        o.product_id,
        o.quantity,
        o.status,
        o.order_ts,
        o.quantity * p.price_cents as amount_cents
    from raw.orders as o
    join {{ ref('staging.products') }} as p on p.product_id = o.product_id
    where {{ in_interval('o.order_ts') }}
)
select
    order_id,
    customer_id,
    product_id,
    quantity,
    status,
    order_ts,
    amount_cents,
    {{ cents_to_dollars('amount_cents') }} as amount
from priced
where amount_cents >= {{ var('min_order_cents') }}
