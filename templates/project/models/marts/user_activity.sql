-- Full: rebuilt from all of staging.events after that day's interval is published.
select
    user_id,
    min(event_ts) as first_seen_ts,
    max(event_ts) as last_seen_ts,
    count(*) as events,
    count(*) filter (where event_type = 'purchase') as purchases
from staging.events
group by user_id
having count(*) >= {{ var('min_events') }}
