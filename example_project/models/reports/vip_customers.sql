select full_name, country, orders, lifetime_value, country_rank
from customer_orders  -- a bare name: only one model is called customer_orders
where lifetime_value >= {{ var('vip_threshold') }}
   or country_rank = 1
