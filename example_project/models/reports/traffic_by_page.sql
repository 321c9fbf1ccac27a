select
    v.page,
    count(*) as views,
    count(distinct v.customer_id) as known_visitors,
    count(*) filter (where v.customer_id is null) as anonymous_views
from staging.page_views as v
group by v.page
union all
select '(all)' as page, count(*), count(distinct customer_id), count(*) filter (where customer_id is null)
from staging.page_views
