-- Hourly: in a daily run this model expands into 24 tasks.
select
    view_id,
    customer_id,
    page,
    viewed_at
from raw.page_views
where viewed_at >= {{ interval_start }}
  and viewed_at < {{ interval_end }}
