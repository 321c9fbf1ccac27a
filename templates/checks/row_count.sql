-- one row when the row count is out of bounds
select n_rows from (select count(*) as n_rows from {{ this }}) as counted
where {% if min is not none %}n_rows < {{ min }}{% endif %}{% if min is not none and max is not none %} or {% endif %}{% if max is not none %}n_rows > {{ max }}{% endif %}
