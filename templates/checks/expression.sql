-- rows where the expression is false (null passes, as in dbt)
select * from {{ this }} where not ({{ expression }})
