-- rows whose {{ column }} is not one of the accepted values (null passes)
select * from {{ this }}
where {{ column }} is not null and {{ column }} not in ({{ values | join(", ") }})
