select product_id, product_name, category, price_cents
from raw.products
