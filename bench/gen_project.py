"""Generate a deterministic synthetic pipe project of N layered models (SPEC §1 layout).

    python bench/gen_project.py OUT_DIR --models N [--seed S] [--kind full|incremental]

The project: pipe.yml (daily schedule from 2026-06-01, a dev DuckDB target), five seeds
under seeds/raw/ of about 1,000 rows each, one macro file, and N models in seven layers:

    staging        10%  reads the seeds
    intermediate   3 x 18%
    marts          2 x 12%
    reports        12%

Each model after staging reads 1-3 models of earlier layers: its primary input from the
layer just before (which keeps the graph deep), the others from any earlier layer. Model
SQL is 20-40 lines with CTEs, joins, aggregates, unions, window functions, subqueries and
scalar subqueries, and every model is valid DuckDB over the seed columns: all facts share
one column set and all customer dimensions another, so any template can read any model.

    fact: id, customer_id, product_id, category, status, event_ts, quantity, amount
    dim:  customer_id, full_name, country, segment, signed_up_on, lifetime_value

Dependencies are plain `schema.table` names in most models (pipe finds them by parsing),
a bare `table` name in about 4%, and `{{ ref('...') }}` with `{{ interval_start }}` /
`{{ interval_end }}` (and a var or macro) in about 10%: those are the models that cost a
Jinja compile. About a quarter of the models have a sidecar .yml (description, tags,
column docs, checks that hold on the generated data).

--kind incremental makes every fact model incremental on `event_ts`: its sidecar says so
and its SQL keeps only the rows of the task's interval, so those models all use Jinja.
Dimension models stay full. The same (N, seed, kind) always gives byte-identical files.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import shutil
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

FACT = ("id", "customer_id", "product_id", "category", "status", "event_ts", "quantity", "amount")
DIM = ("customer_id", "full_name", "country", "segment", "signed_up_on", "lifetime_value")

LAYERS = (  # (schema, prefix, share of the models)
    ("staging", "stg", 0.10),
    ("intermediate", "int", 0.18),
    ("intermediate", "int", 0.18),
    ("intermediate", "int", 0.18),
    ("marts", "mart", 0.12),
    ("marts", "mart", 0.12),
    ("reports", "rpt", 0.12),
)
TOPICS = (
    "orders",
    "revenue",
    "sessions",
    "payments",
    "returns",
    "churn",
    "funnel",
    "basket",
    "refunds",
    "margin",
    "cohort",
    "retention",
    "traffic",
    "inventory",
    "campaign",
    "pricing",
    "loyalty",
    "shipping",
    "support",
    "fraud",
)
COUNTRIES = ("FR", "NL", "DE", "US", "GB", "ES", "IT", "SE", "PL", "JP")
SEGMENTS = ("consumer", "smb", "enterprise", "partner")
CATEGORIES = ("stationery", "books", "toys", "garden", "kitchen", "audio", "sports", "games")
STATUSES = ("placed", "shipped", "returned", "cancelled")
EVENT_TYPES = ("view", "click", "cart", "purchase")
METHODS = ("card", "transfer", "voucher", "wallet")
PAGES = ("/", "/cart", "/checkout", "/product", "/search", "/account")
FIRST = (
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "John",
    "Karen",
    "Ken",
    "Margaret",
    "Niklaus",
    "Radia",
    "Tim",
    "Sophie",
    "Leslie",
)
LAST = (
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Backus",
    "Jones",
    "Thompson",
    "Hamilton",
    "Wirth",
    "Perlman",
    "Lee",
    "Wilson",
    "Lamport",
)

DATA_START = datetime(2026, 6, 1)
DATA_DAYS = 14
SEED_ROWS = 1000
JINJA_SHARE = 0.10
BARE_SHARE = 0.05
SIDECAR_SHARE = 0.25


@dataclass
class Model:
    index: int
    layer: int
    schema: str
    table: str
    shape: str  # fact | dim
    template: str = ""
    jinja: bool = False
    bare: bool = False  # names one input without its schema
    incremental: bool = False
    inputs: list[str] = field(default_factory=list)
    sql: str = ""
    sidecar: str | None = None

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"


# ----------------------------------------------------------------------------- seeds


def _ts(rng: random.Random) -> str:
    t = DATA_START + timedelta(seconds=rng.randrange(DATA_DAYS * 86400))
    return t.strftime("%Y-%m-%d %H:%M:%S")


def _csv(header, rows) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def seed_files(rng: random.Random) -> dict[str, str]:
    """seeds/raw/*.csv (+ .yml for typed timestamp columns), about SEED_ROWS rows each."""
    n = SEED_ROWS
    customers = []
    for i in range(1, n + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        signed = DATA_START - timedelta(days=rng.randrange(1, 400))
        customers.append(
            (
                i,
                f"{first} {last}",
                f"{first}.{last}{i}@example.com".lower(),
                rng.choice(COUNTRIES),
                rng.choice(SEGMENTS),
                signed.strftime("%Y-%m-%d"),
            )
        )
    products = [
        (i, f"{rng.choice(CATEGORIES)}-item-{i}", rng.choice(CATEGORIES), rng.randrange(99, 20000))
        for i in range(1, n + 1)
    ]
    orders = [
        (
            100000 + i,
            rng.randrange(1, n + 1),
            rng.randrange(1, n + 1),
            rng.randrange(1, 6),
            rng.choice(STATUSES),
            _ts(rng),
        )
        for i in range(1, n + 1)
    ]
    events = [
        (
            i,
            rng.randrange(1, n + 1),
            rng.randrange(1, n + 1),
            rng.choice(EVENT_TYPES),
            rng.choice(PAGES),
            _ts(rng),
        )
        for i in range(1, n + 1)
    ]
    payments = []
    for i in range(1, n + 1):
        order = orders[rng.randrange(n)]
        payments.append(
            (500000 + i, order[0], rng.choice(METHODS), rng.randrange(50, 90000), _ts(rng))
        )
    files = {
        "seeds/raw/customers.csv": _csv(
            ("customer_id", "full_name", "email", "country", "segment", "signed_up_on"), customers
        ),
        "seeds/raw/products.csv": _csv(
            ("product_id", "product_name", "category", "price_cents"), products
        ),
        "seeds/raw/orders.csv": _csv(
            ("order_id", "customer_id", "product_id", "quantity", "status", "order_ts"), orders
        ),
        "seeds/raw/events.csv": _csv(
            ("event_id", "customer_id", "product_id", "event_type", "page", "event_ts"), events
        ),
        "seeds/raw/payments.csv": _csv(
            ("payment_id", "order_id", "method", "amount_cents", "paid_ts"), payments
        ),
    }
    for name, col in (("orders", "order_ts"), ("events", "event_ts"), ("payments", "paid_ts")):
        files[f"seeds/raw/{name}.yml"] = (
            f"description: Raw {name} as the backend exports them (generated).\n"
            f"column_types: {{{col}: TIMESTAMP}}\n"
        )
    files["seeds/raw/customers.yml"] = "column_types: {signed_up_on: DATE}\n"
    return files


# ----------------------------------------------------------------------------- SQL helpers


class Ctx:
    """What a template needs: how to name an input, the time filter, random choices."""

    def __init__(self, model: Model, rng: random.Random, bare_ok: set[str]):
        self.m = model
        self.rng = rng
        # about BARE_SHARE of all models name one input without its schema
        self.bare = not model.jinja and rng.random() < BARE_SHARE / (1 - JINJA_SHARE)
        self.bare_ok = bare_ok
        self.bare_used = False

    def t(self, name: str) -> str:
        """How the SQL names input `name`: ref(), a bare name once, or schema.table."""
        if self.m.jinja:
            table = name.split(".", 1)[1]
            # ref() may omit the schema (dbt style) when the table name is unique
            shown = table if table in self.bare_ok and self.rng.random() < 0.3 else name
            return "{{ ref('" + shown + "') }}"
        if self.bare and not self.bare_used and name.split(".", 1)[1] in self.bare_ok:
            self.bare_used = True
            return name.split(".", 1)[1]
        return name

    def when(self, col: str) -> str:
        """Extra WHERE conditions on a timestamp column ('' or ' and ...')."""
        if self.m.incremental:
            return (
                f"\n      and {col} >= {{{{ interval_start }}}} and {col} < {{{{ interval_end }}}}"
            )
        if self.m.jinja:
            return (
                f"\n      and {col} < {{{{ interval_end }}}} + interval "
                f"{self.rng.choice((7, 14, 30))} day"
            )
        return ""

    def minimum(self, low: int, high: int) -> str:
        """A threshold: a literal, or (in a Jinja model) var() / a number."""
        value = self.rng.randrange(low, high)
        if self.m.jinja and self.rng.random() < 0.5:
            return f"{{{{ var('min_amount') }}}} + {value}"
        return str(value)

    def pick(self, seq):
        return self.rng.choice(seq)

    def dollars(self, expr: str) -> str:
        if self.m.jinja:
            return f"{{{{ cents_to_dollars('{expr}') }}}}"
        return f"round({expr} / 100.0, 2)"


def _header(ctx: Ctx, what: str) -> str:
    m = ctx.m
    return f"-- {m.name}: {what} (generated model {m.index:05d}, template {m.template})\n"


# ----------------------------------------------------------------------------- staging


def stg_orders(ctx: Ctx) -> str:
    status = ctx.pick(
        ("'placed', 'shipped'", "'placed', 'shipped', 'returned'", "'shipped', 'returned'")
    )
    return (
        _header(ctx, "orders priced with their product")
        + f"""with orders as (
    select
        o.order_id,
        o.customer_id,
        o.product_id,
        o.quantity,
        lower(o.status) as status,
        o.order_ts
    from {ctx.t("raw.orders")} as o
    where o.quantity >= {ctx.rng.randrange(1, 3)}{ctx.when("o.order_ts")}
),
priced as (
    select
        orders.*,
        p.category,
        p.price_cents
    from orders
    join {ctx.t("raw.products")} as p on p.product_id = orders.product_id
)
select
    cast(order_id as bigint) as id,
    cast(customer_id as bigint) as customer_id,
    cast(product_id as bigint) as product_id,
    category,
    status,
    cast(order_ts as timestamp) as event_ts,
    cast(quantity as bigint) as quantity,
    cast({ctx.dollars("quantity * price_cents")} as double) as amount
from priced
where status in ({status})
"""
    )


def stg_events(ctx: Ctx) -> str:
    pages = ctx.pick(("'/cart', '/checkout'", "'/product', '/search'", "'/', '/account'"))
    return (
        _header(ctx, "site events with the product they touch")
        + f"""with events as (
    select
        e.event_id,
        e.customer_id,
        e.product_id,
        e.event_type,
        e.page,
        e.event_ts
    from {ctx.t("raw.events")} as e
    where e.customer_id is not null{ctx.when("e.event_ts")}
)
select
    cast(ev.event_id as bigint) as id,
    cast(ev.customer_id as bigint) as customer_id,
    cast(ev.product_id as bigint) as product_id,
    coalesce(p.category, 'unknown') as category,
    case
        when ev.event_type = 'purchase' then 'placed'
        when ev.page in ({pages}) then 'engaged'
        else ev.event_type
    end as status,
    cast(ev.event_ts as timestamp) as event_ts,
    cast(1 as bigint) as quantity,
    cast(case when ev.event_type = 'purchase'
              then {ctx.dollars("p.price_cents")} else 0 end as double) as amount
from events as ev
left join {ctx.t("raw.products")} as p on p.product_id = ev.product_id
"""
    )


def stg_payments(ctx: Ctx) -> str:
    large = ctx.rng.randrange(20000, 60000)
    return (
        _header(ctx, "payments matched to their order")
        + f"""with payments as (
    select
        pay.payment_id,
        pay.order_id,
        lower(pay.method) as method,
        pay.amount_cents,
        pay.paid_ts
    from {ctx.t("raw.payments")} as pay
    where pay.amount_cents > 0{ctx.when("pay.paid_ts")}
),
orders as (
    select order_id, customer_id, product_id, quantity
    from {ctx.t("raw.orders")}
)
select
    cast(payments.payment_id as bigint) as id,
    cast(orders.customer_id as bigint) as customer_id,
    cast(orders.product_id as bigint) as product_id,
    payments.method as category,
    case when payments.amount_cents > {large} then 'large' else 'regular' end as status,
    cast(payments.paid_ts as timestamp) as event_ts,
    cast(orders.quantity as bigint) as quantity,
    cast({ctx.dollars("payments.amount_cents")} as double) as amount
from payments
join orders on orders.order_id = payments.order_id
"""
    )


def stg_customers(ctx: Ctx) -> str:
    return (
        _header(ctx, "customers with their lifetime spend")
        + f"""with spend as (
    select
        o.customer_id,
        sum(o.quantity * p.price_cents) as spend_cents,
        count(*) as orders
    from {ctx.t("raw.orders")} as o
    join {ctx.t("raw.products")} as p on p.product_id = o.product_id
    where o.status <> 'cancelled'
    group by o.customer_id
)
select
    cast(c.customer_id as bigint) as customer_id,
    trim(c.full_name) as full_name,
    upper(c.country) as country,
    case
        when coalesce(s.orders, 0) >= {ctx.rng.randrange(3, 6)} then 'repeat'
        else c.segment
    end as segment,
    cast(c.signed_up_on as date) as signed_up_on,
    cast({ctx.dollars("coalesce(s.spend_cents, 0)")} as double) as lifetime_value
from {ctx.t("raw.customers")} as c
left join spend as s on s.customer_id = c.customer_id
where c.email like '%@%'
"""
    )


STAGING = (
    ("fact", stg_orders),
    ("fact", stg_events),
    ("fact", stg_payments),
    ("dim", stg_customers),
)


# ----------------------------------------------------------------------------- fact templates


def _fact_cols(alias: str, indent: str = "        ") -> str:
    return (",\n" + indent).join(f"{alias}.{c}" for c in FACT)


def fact_enrich(ctx: Ctx, f1: str, others: list[str], dim: str | None) -> str:
    """A fact with customer attributes from a dimension (or stats of another fact)."""
    seg = ctx.pick(SEGMENTS + ("repeat",))
    if dim:
        side = f"""customers as (
    select customer_id, country, segment, lifetime_value
    from {ctx.t(dim)}
)"""
        join = "left join customers as c on c.customer_id = b.customer_id"
        cat = f"case when c.segment = '{seg}' then b.category || '+{seg[:3]}' else b.category end"
        factor = (
            f"case when c.lifetime_value > {ctx.rng.randrange(50, 400)} "
            f"then {ctx.pick(('1.05', '1.1', '0.95'))} else 1.0 end"
        )
    else:
        side = f"""customers as (
    select customer_id, count(*) as events, avg(amount) as lifetime_value
    from {ctx.t(others[0] if others else f1)}
    group by customer_id
)"""
        join = "left join customers as c on c.customer_id = b.customer_id"
        cat = "case when c.events > 2 then b.category else b.category || '+new' end"
        factor = "case when c.lifetime_value > b.amount then 1.02 else 1.0 end"
    return (
        _header(ctx, "enriched with customer attributes")
        + f"""with base as (
    select
        {_fact_cols("f")}
    from {ctx.t(f1)} as f
    where f.amount >= {ctx.minimum(0, 3)}{ctx.when("f.event_ts")}
),
{side}
select
    b.id,
    b.customer_id,
    b.product_id,
    {cat} as category,
    b.status,
    b.event_ts,
    b.quantity,
    round(b.amount * {factor}, 2) as amount
from base as b
{join}
"""
    )


def fact_union(ctx: Ctx, f1: str, others: list[str], dim: str | None) -> str:
    """Union of several facts, deduplicated per id with row_number()."""
    branches = []
    sources = [f1] + others[:2]
    for i, src in enumerate(sources):
        branches.append(f"""    select u.id, u.customer_id, u.product_id, u.category, u.status,
           u.event_ts, u.quantity, u.amount, {i} as source_rank
    from {ctx.t(src)} as u
    where u.quantity > 0{ctx.when("u.event_ts")}""")
    if len(sources) == 1:  # split one input in two slices
        branches.append(f"""    select u.id, u.customer_id, u.product_id, u.category, u.status,
           u.event_ts, u.quantity, u.amount, 1 as source_rank
    from {ctx.t(f1)} as u
    where u.status <> '{ctx.pick(STATUSES)}'{ctx.when("u.event_ts")}""")
    union = "\n    union all\n".join(branches)
    return (
        _header(ctx, "union of upstream facts, one row per id")
        + f"""with unioned as (
{union}
),
ranked as (
    select
        unioned.*,
        row_number() over (partition by id order by source_rank, event_ts desc) as rn,
        count(*) over (partition by id) as copies
    from unioned
)
select
    id,
    customer_id,
    product_id,
    category,
    case when copies > 1 then 'merged' else status end as status,
    event_ts,
    quantity,
    amount
from ranked
where rn = 1
"""
    )


def fact_daily(ctx: Ctx, f1: str, others: list[str], dim: str | None) -> str:
    """Daily aggregate per customer, product and status, flagged by another input."""
    other = others[0] if others else f1
    return (
        _header(ctx, "daily totals per customer and product")
        + f"""with known as (
    select customer_id, count(*) as n_seen
    from {ctx.t(other)}
    where amount > {ctx.rng.randrange(0, 5)}
    group by customer_id
),
daily as (
    select
        min(f.id) as id,
        f.customer_id,
        f.product_id,
        f.category,
        f.status,
        date_trunc('day', f.event_ts) as event_ts,
        sum(f.quantity) as quantity,
        sum(f.amount) as amount
    from {ctx.t(f1)} as f
    where f.quantity >= 0{ctx.when("f.event_ts")}
    group by f.customer_id, f.product_id, f.category, f.status, date_trunc('day', f.event_ts)
    having count(*) >= 1
)
select
    d.id,
    d.customer_id,
    d.product_id,
    d.category,
    case when k.n_seen > {ctx.rng.randrange(1, 4)} then 'repeat' else d.status end as status,
    d.event_ts,
    cast(d.quantity as bigint) as quantity,
    round(d.amount, 2) as amount
from daily as d
left join known as k on k.customer_id = d.customer_id
"""
    )


def fact_window(ctx: Ctx, f1: str, others: list[str], dim: str | None) -> str:
    """Running totals, lag and rank per customer."""
    filt = ""
    if others:
        filt = f"""
      and w.customer_id not in (
          select customer_id from {ctx.t(others[0])}
          where status = '{ctx.pick(STATUSES)}' and amount > {ctx.rng.randrange(400, 900)}
      )"""
    return (
        _header(ctx, "running totals per customer")
        + f"""with windowed as (
    select
        {_fact_cols("w")},
        sum(w.amount) over (
            partition by w.customer_id order by w.event_ts, w.id
            rows between unbounded preceding and current row
        ) as running_amount,
        lag(w.event_ts) over (partition by w.customer_id order by w.event_ts, w.id) as prev_ts,
        rank() over (partition by w.category order by w.amount desc, w.id) as category_rank
    from {ctx.t(f1)} as w
    where w.id is not null{ctx.when("w.event_ts")}{filt}
)
select
    id,
    customer_id,
    product_id,
    case when category_rank <= {ctx.rng.randrange(3, 20)} then category || '+top'
         else category end as category,
    case when prev_ts is null then 'first' else status end as status,
    event_ts,
    quantity,
    round(running_amount, 2) as amount
from windowed
"""
    )


def fact_scored(ctx: Ctx, f1: str, others: list[str], dim: str | None) -> str:
    """Joins per-customer and per-category statistics back onto the rows."""
    stats_src = others[0] if others else f1
    return (
        _header(ctx, "rows scored against customer and category stats")
        + f"""with rows_ as (
    select {", ".join(FACT)}
    from {ctx.t(f1)}
    where quantity between 0 and {ctx.rng.randrange(50, 500)}{ctx.when("event_ts")}
),
per_customer as (
    select customer_id, count(*) as n, avg(amount) as avg_amount
    from {ctx.t(stats_src)}
    group by customer_id
),
per_category as (
    select category, max(amount) as max_amount
    from rows_
    group by category
)
select
    r.id,
    r.customer_id,
    r.product_id,
    r.category,
    case
        when r.amount > coalesce(pc.avg_amount, 0) * {ctx.pick(("1.5", "2", "3"))} then 'outlier'
        when r.amount >= cat.max_amount then 'top'
        else r.status
    end as status,
    r.event_ts,
    r.quantity,
    round(r.amount - (select avg(amount) from rows_) * 0.01, 2) as amount
from rows_ as r
left join per_customer as pc on pc.customer_id = r.customer_id
join per_category as cat on cat.category = r.category
"""
    )


FACT_TEMPLATES = (fact_enrich, fact_union, fact_daily, fact_window, fact_scored)


# ----------------------------------------------------------------------------- dim templates


def dim_ltv(ctx: Ctx, d: str, facts: list[str], dim2: str | None) -> str:
    """A customer dimension with lifetime value recomputed from a fact."""
    src = facts[0] if facts else d
    if facts:
        spend = f"""spend as (
    select customer_id, sum(amount) as total, count(*) as n, max(event_ts) as last_ts
    from {ctx.t(src)}
    where status <> 'cancelled'
    group by customer_id
)"""
    else:
        spend = f"""spend as (
    select customer_id, sum(lifetime_value) as total, count(*) as n,
           max(signed_up_on) as last_ts
    from {ctx.t(src)}
    group by customer_id
)"""
    return (
        _header(ctx, "customers with lifetime value")
        + f"""with customers as (
    select {", ".join(DIM)}
    from {ctx.t(d)}
),
{spend},
ranked as (
    select
        c.*,
        coalesce(s.total, 0) as total,
        coalesce(s.n, 0) as n,
        rank() over (partition by c.country order by coalesce(s.total, 0) desc) as country_rank
    from customers as c
    left join spend as s on s.customer_id = c.customer_id
)
select
    customer_id,
    full_name,
    country,
    case
        when country_rank <= {ctx.rng.randrange(3, 15)} then 'vip'
        when n = 0 then 'dormant'
        else segment
    end as segment,
    signed_up_on,
    round(lifetime_value * 0.5 + total * 0.5, 2) as lifetime_value
from ranked
"""
    )


def dim_merge(ctx: Ctx, d: str, facts: list[str], dim2: str | None) -> str:
    """Two customer dimensions merged, one row per customer."""
    other = dim2 or d
    return (
        _header(ctx, "customer dimensions merged")
        + f"""with merged as (
    select {", ".join(DIM)}, 0 as priority
    from {ctx.t(d)}
    union all
    select {", ".join(DIM)}, 1 as priority
    from {ctx.t(other)}
    where segment <> '{ctx.pick(SEGMENTS)}'
),
latest as (
    select
        merged.*,
        row_number() over (
            partition by customer_id
            order by priority, lifetime_value desc
        ) as rn,
        count(*) over (partition by customer_id) as versions
    from merged
)
select
    customer_id,
    full_name,
    country,
    case when versions > 1 then segment else 'single-source' end as segment,
    signed_up_on,
    lifetime_value
from latest
where rn = 1
  and customer_id is not null
"""
    )


DIM_TEMPLATES = (dim_ltv, dim_merge)


# ----------------------------------------------------------------------------- the project


def layer_sizes(n: int) -> list[int]:
    sizes = [max(1, round(n * share)) for _, _, share in LAYERS]
    sizes[0] = max(4, sizes[0])  # every staging template at least once
    sizes[-1] += n - sum(sizes)
    if sizes[-1] < 1:
        raise SystemExit(f"--models must be at least {sum(sizes) - sizes[-1] + 1}")
    return sizes


def plan_models(n: int, rng: random.Random, kind: str) -> list[Model]:
    models: list[Model] = []
    by_layer: list[list[Model]] = []
    for layer, size in enumerate(layer_sizes(n)):
        schema, prefix, _ = LAYERS[layer]
        here = []
        for _ in range(size):
            i = len(models)
            topic = TOPICS[rng.randrange(len(TOPICS))]
            if layer == 0:
                shape = STAGING[i % len(STAGING)][0]
            else:
                shape = "dim" if rng.random() < 0.12 else "fact"
            suffix = "customers" if shape == "dim" else topic
            m = Model(i, layer, schema, f"{prefix}_{suffix}_{i:05d}", shape)
            m.jinja = rng.random() < JINJA_SHARE
            m.incremental = kind == "incremental" and shape == "fact"
            if m.incremental:
                m.jinja = True
            here.append(m)
            models.append(m)
        by_layer.append(here)
    return models


def choose_inputs(m: Model, by_layer: list[list[Model]], rng: random.Random) -> None:
    earlier = [x for layer in by_layer[: m.layer] for x in layer]
    prev = by_layer[m.layer - 1]
    want = m.shape
    primary_pool = [x for x in prev if x.shape == want] or [x for x in earlier if x.shape == want]
    primary = rng.choice(primary_pool)
    facts = [x for x in earlier if x.shape == "fact" and x is not primary]
    dims = [x for x in earlier if x.shape == "dim" and x is not primary]
    extra = rng.choice((0, 1, 1, 2))
    chosen = [primary]
    for _ in range(extra):
        pool = facts if (rng.random() < 0.75 or not dims) else dims
        cand = rng.choice(pool)
        if cand not in chosen:
            chosen.append(cand)
    if m.shape == "dim" and not any(x.shape == "fact" for x in chosen[1:]):
        chosen.append(rng.choice(facts))
    m.inputs = [x.name for x in chosen]


def render_model(m: Model, rng: random.Random, by_name: dict[str, Model], bare_ok: set[str]) -> str:
    ctx = Ctx(m, rng, bare_ok)
    try:
        return _render(m, ctx, rng, by_name)
    finally:
        m.bare = ctx.bare_used


def _render(m: Model, ctx: Ctx, rng: random.Random, by_name: dict[str, Model]) -> str:
    if m.layer == 0:
        template = STAGING[m.index % len(STAGING)][1]
        m.template = template.__name__
        return template(ctx)
    primary, rest = m.inputs[0], m.inputs[1:]
    facts = [x for x in rest if by_name[x].shape == "fact"]
    dims = [x for x in rest if by_name[x].shape == "dim"]
    if m.shape == "fact":
        template = FACT_TEMPLATES[rng.randrange(len(FACT_TEMPLATES))]
        m.template = template.__name__
        if template is fact_union:  # a union reads facts only
            m.inputs = [primary] + facts
            return template(ctx, primary, facts, None)
        if template is fact_enrich:
            m.inputs = [primary] + (dims[:1] or facts[:1])
            return template(ctx, primary, facts[:1], dims[0] if dims else None)
        m.inputs = [primary] + facts[:1]
        return template(ctx, primary, facts, None)
    template = DIM_TEMPLATES[rng.randrange(len(DIM_TEMPLATES))]
    m.template = template.__name__
    if template is dim_merge:
        m.inputs = [primary] + dims[:1]
        return template(ctx, primary, facts, dims[0] if dims else None)
    m.inputs = [primary] + facts[:1]
    return template(ctx, primary, facts, None)


def sidecar(m: Model, rng: random.Random) -> str | None:
    want = m.incremental or rng.random() < SIDECAR_SHARE
    if not want:
        return None
    lines = [
        f"description: Generated {m.shape} model {m.index} ({m.template}).",
        f"tags: [{LAYERS[m.layer][0]}, {m.shape}]",
    ]
    if m.incremental:
        lines += ["kind: incremental", "time_column: event_ts"]
    if m.shape == "fact":
        lines += ["checks:", "  - not_null: [id, customer_id]"]
        if rng.random() < 0.3:
            lines.append(f"  - row_count: {{max: {SEED_ROWS * 10}}}")
        lines += ["columns:", "  id: Source row id", "  amount: Amount in dollars"]
    else:
        lines += [
            "checks:",
            "  - not_null: [customer_id]",
            "  - unique: [customer_id]",
            "columns:",
            "  customer_id: One row per customer",
        ]
    return "\n".join(lines) + "\n"


PIPE_YML = """# Synthetic project generated by bench/gen_project.py; do not edit by hand.
name: {name}
dialect: duckdb
start: 2026-06-01
schedule: daily
concurrency: 2
default_target: dev
targets:
  dev: {{adapter: duckdb, path: warehouse.duckdb}}
vars:
  min_amount: 0
"""

MACROS = """{% macro cents_to_dollars(column) -%}
round({{ column }} / 100.0, 2)
{%- endmacro %}
"""


def generate(n: int, seed: int = 0, kind: str = "full") -> tuple[dict[str, str], dict]:
    """(relative path -> file text, summary) of one project."""
    rng = random.Random(f"pipe-bench:{seed}:{kind}")
    files: dict[str, str] = {
        "pipe.yml": PIPE_YML.format(name=f"bench_{n}"),
        "macros/bench.sql": MACROS,
    }
    files.update(seed_files(random.Random(f"pipe-bench-seeds:{seed}")))
    models = plan_models(n, rng, kind)
    by_name = {m.name: m for m in models}
    by_layer: dict[int, list[Model]] = {}
    for m in models:
        by_layer.setdefault(m.layer, []).append(m)
    layers = [by_layer[i] for i in sorted(by_layer)]
    # model table names are unique across schemas, so a bare one always resolves (seed
    # names are not used bare: staging CTEs are called like the seeds they read)
    bare_ok = {m.table for m in models}
    for m in models:
        if m.layer:
            choose_inputs(m, layers, rng)
        m.sql = render_model(m, rng, by_name, bare_ok)
        m.sidecar = sidecar(m, rng)
        files[f"models/{m.schema}/{m.table}.sql"] = m.sql
        if m.sidecar:
            files[f"models/{m.schema}/{m.table}.yml"] = m.sidecar
    line_counts = [m.sql.count("\n") for m in models]
    templates: dict[str, int] = {}
    for m in models:
        templates[m.template] = templates.get(m.template, 0) + 1
    summary = {
        "models": n,
        "seed": seed,
        "kind": kind,
        "layers": [len(x) for x in layers],
        "jinja_models": sum(m.jinja for m in models),
        "jinja_share": round(sum(m.jinja for m in models) / n, 4),
        "bare_name_models": sum(m.bare for m in models),
        "incremental_models": sum(m.incremental for m in models),
        "dim_models": sum(m.shape == "dim" for m in models),
        "sidecars": sum(m.sidecar is not None for m in models),
        "sql_lines": {
            "min": min(line_counts),
            "max": max(line_counts),
            "mean": round(sum(line_counts) / n, 1),
        },
        "inputs_per_model": round(
            sum(len(m.inputs) for m in models if m.layer)
            / max(1, sum(1 for m in models if m.layer)),
            2,
        ),
        "templates": dict(sorted(templates.items())),
    }
    return files, summary


def write_project(out: Path, files: dict[str, str], force: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not (out / "pipe.yml").is_file() or not force:
            raise SystemExit(f"{out} is not empty; pass --force to replace a generated project")
        for sub in ("models", "seeds", "macros", "plans", ".pipe"):
            shutil.rmtree(out / sub, ignore_errors=True)
        for f in ("pipe.yml", "warehouse.duckdb", "warehouse.duckdb.wal"):
            (out / f).unlink(missing_ok=True)
    for rel, text in sorted(files.items()):
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="directory to write the project into")
    ap.add_argument("--models", type=int, required=True, help="number of models")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument(
        "--kind",
        choices=("full", "incremental"),
        default="full",
        help="full: every model full (default); incremental: fact models are "
        "incremental on event_ts",
    )
    ap.add_argument(
        "--force",
        action="store_true",
        help="replace the generated files of an existing project in OUT",
    )
    args = ap.parse_args(argv)
    files, summary = generate(args.models, args.seed, args.kind)
    write_project(args.out, files, args.force)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
