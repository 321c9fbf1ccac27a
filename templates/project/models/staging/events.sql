-- Incremental: the task for [interval_start, interval_end) owns exactly the rows whose
-- event_ts falls in that interval. Rerunning a day replaces that day's rows, nothing else.
select
    event_id,
    user_id,
    lower(event_type) as event_type,
    event_ts
from raw.events
where {{ in_interval('event_ts') }}
