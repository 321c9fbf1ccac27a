-- key values that occur more than once
select {{ columns | join(", ") }}, count(*) as n_rows
from {{ this }}
group by {{ columns | join(", ") }}
having count(*) > 1
