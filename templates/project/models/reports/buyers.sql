-- A view: no sidecar needed, it is created (or replaced) after marts.user_activity.
select user_id, purchases, last_seen_ts
from user_activity  -- a bare table name resolves when exactly one model has it
where purchases > 0
