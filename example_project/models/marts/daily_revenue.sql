select
    cast(order_ts as date) as order_date,
    count(*) as orders,
    count(distinct customer_id) as customers,
    sum(amount) as revenue,
    sum(case when status = 'returned' then amount else 0 end) as returned_revenue,
    min(order_ts) as first_order_ts
from staging.orders
where order_ts >= {{ interval_start }} and order_ts < {{ interval_end }}
group by 1
