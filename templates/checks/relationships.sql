-- rows whose {{ column }} has no match in {{ to_table }}.{{ to_column }} (null passes)
select child.*
from {{ this }} as child
left join {{ to_table }} as parent on child.{{ column }} = parent.{{ to_column }}
where child.{{ column }} is not null and parent.{{ to_column }} is null
