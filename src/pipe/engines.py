"""Each warehouse engine's rules, known without its driver or a connection.

    EngineRules        the permissive defaults
    ├── DuckDBRules
    ├── PostgresRules
    └── SparkRules

An engine declares its `adapter:` name and adapter class, its default dialect, the target
options it reads, the longest name it keeps, the words it reserves, the SQL it cannot run
although sqlglot writes it, and fixes to what sqlglot writes for it.

An adapter class inherits its engine's rules (`class PostgresAdapter(PostgresRules,
Adapter)`), so the rules live on the adapter class; compile and config read them here,
through `ENGINES`, because importing an adapter imports its driver (psycopg alone takes
over a tenth of a second to import). Engines differ by these subclasses, never by
`if adapter == ...` (STYLE §6). This module imports no driver, and sqlglot only in the
methods that walk a tree, which compile calls once it has one.
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import SourceLocation, SqlError


class EngineRules:
    """An engine with no rules of its own: every method is the permissive default."""

    name = ""  # the `adapter:` value in pipe.yml
    adapter_class = ""  # "module:Class" of its Adapter subclass, imported only to connect
    dialect = "duckdb"  # sqlglot dialect of the SQL the adapter writes; a target's default
    options: tuple[str, ...] = ()  # the target keys it reads, besides the common ones
    max_identifier: int | None = None  # bytes of a name it keeps; a longer one is cut
    reserved_words: frozenset[str] = frozenset()  # no schema or table may be named so
    table_name_words: frozenset[str] = frozenset()  # of those, what a table may be named
    # sqlglot's Generator.RESERVED_KEYWORDS of `dialect`, copied so that sql.py spells plain
    # names and strings without importing sqlglot (tests/test_sql_fast.py compares them);
    # None: sqlglot spells every name and string in this dialect
    sqlglot_reserved: frozenset[str] | None = None

    @classmethod
    def target_problem(cls, options: Mapping) -> str | None:
        """What a target of this engine lacks ("'dsn'"), or None."""
        return None

    @classmethod
    def name_problem(cls, part: str, target: str) -> tuple[str, str] | None:
        """(message, hint) when a schema or table name `part` cannot work on this engine."""
        limit = cls.max_identifier
        if limit is None or len(part.encode()) <= limit:
            return None
        return (
            f"'{part}' is {len(part.encode())} characters long; {cls.name} keeps {limit}"
            f" (target '{target}'), so the name would be cut short",
            f"shorten it to at most {limit}",
        )

    @classmethod
    def rewrite(cls, tree):
        """`tree` with what sqlglot writes wrongly for this engine rewritten (a copy)."""
        return tree

    @classmethod
    def validate_sql(cls, tree, text: str, path: str) -> None:
        """Refuse at compile time, as an SqlError naming `path` and the line, what this
        engine cannot run of a model transpiled for it: `tree` is the model, `text` the
        SQL sqlglot wrote for the engine."""
        return None


# ---------------------------------------------------------------- DuckDB

# duckdb_keywords(): 'reserved' and 'type_function' (tests/test_hostile_compile.py checks)
_DUCKDB_RESERVED = """
    all analyse analyze and anti any array as asc asof asymmetric at authorization binary
    both by case cast check collate collation column columns concurrently constraint create
    cross default deferrable desc describe distinct do else end except false fetch for
    foreign freeze from full generated glob group having ilike in initially inner intersect
    into is isnull join lambda lateral leading left like limit map natural not notnull null
    offset on only or order outer overlaps pivot pivot_longer pivot_wider placing positional
    primary qualify references returning right select semi show similar some struct
    summarize symmetric table tablesample then to trailing true try_cast tuple union unique
    unpack unpivot using variadic verbose when where window with
"""
# the 'type_function' ones DuckDB takes as a table name after a schema (`raw.semi`)
_DUCKDB_TABLE_WORDS = """
    anti asof at authorization binary by collation columns concurrently cross freeze full
    generated glob ilike inner is isnull join left like map natural notnull outer overlaps
    positional right semi similar struct tablesample try_cast tuple unpack verbose
"""


# sqlglot's DuckDB Generator.RESERVED_KEYWORDS
_DUCKDB_SQLGLOT_RESERVED = """
    all analyse analyze and anti any array as asc asof asymmetric at authorization binary
    both by case cast check collate collation column columns concurrently constraint
    create cross current_catalog current_date current_role current_time current_timestamp
    current_user default deferrable desc describe distinct do else end except false fetch
    for foreign freeze from full generated glob grant group having ilike in initially inner
    intersect into is isnull join lambda lateral leading left like limit localtime
    localtimestamp map natural not notnull null offset on only or order outer overlaps
    pivot pivot_longer pivot_wider placing positional primary qualify references returning
    right select semi session_user show similar some struct summarize symmetric table
    tablesample then to trailing true try_cast tuple union unique unpack unpivot user using
    variadic verbose when where window with
"""


class DuckDBRules(EngineRules):
    name = "duckdb"
    adapter_class = "pipe.adapters.duckdb:DuckDBAdapter"
    dialect = "duckdb"
    options = ("path",)
    reserved_words = frozenset(_DUCKDB_RESERVED.split())
    table_name_words = frozenset(_DUCKDB_TABLE_WORDS.split())
    sqlglot_reserved = frozenset(_DUCKDB_SQLGLOT_RESERVED.split())


# ---------------------------------------------------------------- what only DuckDB runs


def _line_of(node) -> int | None:
    for n in node.walk():
        line = n.meta.get("line") if hasattr(n, "meta") else None
        if line:
            return line
    return None


def _refuse(node, engine: str, what: str, path: str, hint: str | None) -> SqlError:
    return SqlError(
        f"{what} cannot run on {engine}", at=SourceLocation(path, _line_of(node)), hint=hint
    )


def _refuse_duckdb_only(tree, engine: str, path: str) -> None:
    """DuckDB idioms that sqlglot passes through to an engine without them."""
    from sqlglot import exp

    for join in tree.find_all(exp.Join):
        method = (join.text("method") or "").upper()
        if (join.args.get("kind") or "").upper() == "ASOF" or "ASOF" in method:
            raise _refuse(join, engine, "ASOF JOIN", path, None)
    for star in tree.find_all(exp.Star):
        if star.args.get("except_") or star.args.get("except") or star.args.get("replace"):
            raise _refuse(
                star, engine, "SELECT * EXCLUDE/REPLACE", path, "list the columns you want"
            )


# ---------------------------------------------------------------- PostgreSQL

# pglast.keywords: RESERVED_KEYWORDS and TYPE_FUNC_NAME_KEYWORDS
_POSTGRES_RESERVED = """
    all analyse analyze and any array as asc asymmetric authorization binary both case cast
    check collate collation column concurrently constraint create cross current_catalog
    current_date current_role current_schema current_time current_timestamp current_user
    default deferrable desc distinct do else end except false fetch for foreign freeze from
    full grant group having ilike in initially inner intersect into is isnull join lateral
    leading left like limit localtime localtimestamp natural not notnull null offset on only
    or order outer overlaps placing primary references returning right select session_user
    similar some symmetric system_user table tablesample then to trailing true union unique
    user using variadic verbose when where window with
"""


class PostgresRules(EngineRules):
    name = "postgres"
    adapter_class = "pipe.adapters.postgres:PostgresAdapter"
    dialect = "postgres"
    options = ("dsn",)
    max_identifier = 63  # NAMEDATALEN - 1: two longer names would become one table
    reserved_words = frozenset(_POSTGRES_RESERVED.split())
    sqlglot_reserved = frozenset()

    @classmethod
    def target_problem(cls, options: Mapping) -> str | None:
        return None if "dsn" in options else "'dsn'"

    @classmethod
    def validate_sql(cls, tree, text: str, path: str) -> None:
        """Constructs sqlglot writes for Postgres without complaint that Postgres cannot
        run (found by transpiling DuckDB idioms), then PostgreSQL's own grammar (pglast)
        over the SQL as written, where pglast is installed."""
        from sqlglot import exp

        lacks = (
            (exp.Transform, "list lambdas (list_transform / x -> ...)"),
            (exp.Struct, "STRUCT values ({'a': 1} / struct_pack)"),
            (exp.StructExtract, "struct field access"),
        )
        for kind, what in lacks:
            node = tree.find(kind)
            if node is not None:
                raise _refuse(node, cls.name, what, path, "write it in SQL both dialects share")
        _refuse_duckdb_only(tree, cls.name, path)
        _parse_with_pglast(text, path)


def _parse_with_pglast(text: str, path: str) -> None:
    try:
        import pglast
    except ImportError:  # optional: without it, Postgres reports such errors at run time
        return
    try:
        pglast.parse_sql(text)
    except pglast.parser.ParseError as exc:
        message, index = (exc.args + (None,))[:2]
        line = text.count("\n", 0, index) + 1 if isinstance(index, int) else None
        near = text[index : index + 30].split("\n")[0] if isinstance(index, int) else ""
        raise SqlError(
            f"the SQL written for postgres does not parse there: {message}"
            + (f" (plan SQL line {line}, near '{near}')" if line else ""),
            at=SourceLocation(path),
            hint="a construct of the project dialect with no postgres "
            "equivalent; see docs/adapters.md",
        ) from None


# ---------------------------------------------------------------- Spark


class SparkRules(EngineRules):
    name = "spark"
    adapter_class = "pipe.adapters.spark:SparkAdapter"
    dialect = "spark"
    options = ("remote", "master", "warehouse")

    @classmethod
    def target_problem(cls, options: Mapping) -> str | None:
        if ("remote" in options) != ("master" in options):
            return None
        return "either 'remote' (sc://HOST:PORT) or 'master' (local[N]), not both"

    @classmethod
    def rewrite(cls, tree):
        """A series as a table source (DuckDB's `range(3) t(i)`) becomes Spark's own
        `range(0, 3) t(i)`, where sqlglot writes an EXPLODE(SEQUENCE(...)) that Spark
        cannot parse in a FROM clause."""
        from sqlglot import exp

        if tree.find(exp.GenerateSeries) is None:
            return tree
        tree = tree.copy()
        for series in list(tree.find_all(exp.GenerateSeries)):
            if not isinstance(series.parent, exp.Table):
                continue
            start, end = series.args.get("start"), series.args.get("end")
            if not series.args.get("is_end_exclusive"):
                end = exp.Add(this=end.copy(), expression=exp.Literal.number(1))
            args = [start.copy(), end.copy()]
            if series.args.get("step"):
                args.append(series.args["step"].copy())
            series.replace(exp.Anonymous(this="range", expressions=args))
        return tree

    @classmethod
    def validate_sql(cls, tree, text: str, path: str) -> None:
        """What Spark cannot run although sqlglot writes it for Spark without complaint
        (found by running DuckDB idioms on a Spark Connect server)."""
        from sqlglot import exp

        _refuse_duckdb_only(tree, cls.name, path)
        for node in tree.walk():
            what = _spark_lacks(node, exp)
            if what:
                raise _refuse(
                    node,
                    cls.name,
                    what,
                    path,
                    "write it in SQL both dialects share; see docs/adapters.md",
                )


def _spark_lacks(node, exp) -> str | None:
    if isinstance(node, exp.SetOperation) and node.args.get("by_name"):
        return "UNION BY NAME"
    if isinstance(node, exp.Pivot) and node.args.get("using"):
        return "DuckDB's PIVOT ... ON ... USING statement"
    if isinstance(node, exp.Cast) and node.to.is_type("json"):
        return "a cast to JSON (::json)"
    return None


# ---------------------------------------------------------------- the registry

ENGINES: dict[str, type[EngineRules]] = {
    rules.name: rules for rules in (DuckDBRules, PostgresRules, SparkRules)
}
_BY_DIALECT = {rules.dialect: rules for rules in ENGINES.values()}


def for_dialect(dialect: str) -> type[EngineRules]:
    """The engine whose own dialect `dialect` is (its `rewrite` fixes what sqlglot writes
    in it); the rule-less EngineRules for any other sqlglot dialect."""
    return _BY_DIALECT.get(dialect, EngineRules)


# A project compiles for every target it names and moves between engines (dev on DuckDB,
# production on Postgres): a name that one engine reserves is refused on all of them.
# pipe writes `create schema s` and `alter table ... rename to t` unquoted.
_RESERVED = frozenset().union(*(e.reserved_words for e in ENGINES.values()))
_NOT_A_TABLE = frozenset().union(*(e.reserved_words - e.table_name_words for e in ENGINES.values()))


def reserved(word: str) -> bool:
    """Whether some engine reserves `word`: no schema may be named so."""
    return word in _RESERVED


def reserved_for_tables(word: str) -> bool:
    """Whether some engine refuses `word` as a table name even after a schema."""
    return word in _NOT_A_TABLE
