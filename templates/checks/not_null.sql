-- rows where {{ column }} is null
select * from {{ this }} where {{ column }} is null
