-- One row per customer, names split and emails normalised.
select
    customer_id,
    full_name,
    split_part(full_name, ' ', 1) as first_name,
    lower(email) as email,
    country,
    cast(signed_up_on as date) as signed_up_on
from raw.customers
