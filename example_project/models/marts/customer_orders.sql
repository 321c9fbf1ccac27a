-- Lifetime value per customer, ranked within their country.
with totals as (
    select
        customer_id,
        count(*) as orders,
        sum(amount) as lifetime_value,
        max(order_ts) as last_order_ts
    from staging.orders
    where status <> 'returned'
    group by customer_id
)
select
    c.customer_id,
    c.full_name,
    c.country,
    coalesce(t.orders, 0) as orders,
    coalesce(t.lifetime_value, 0) as lifetime_value,
    t.last_order_ts,
    rank() over (partition by c.country order by coalesce(t.lifetime_value, 0) desc) as country_rank
from staging.customers as c
left join totals as t on t.customer_id = c.customer_id
