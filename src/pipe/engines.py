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

# Spark 4.3's built-in functions with a name (`SHOW SYSTEM FUNCTIONS`, operators left out)
_SPARK_FUNCTIONS = """
    abs acos acosh add_months aes_decrypt aes_encrypt aggregate and any any_value
    approx_count_distinct approx_percentile approx_top_k approx_top_k_accumulate
    approx_top_k_combine approx_top_k_estimate array array_agg array_append array_compact
    array_contains array_distinct array_except array_insert array_intersect array_join
    array_max array_min array_position array_prepend array_remove array_repeat array_size
    array_sort array_union arrays_overlap arrays_zip ascii asin asinh assert_true atan atan2
    atanh avg base64 between bigint bin binary bit_and bit_count bit_get bit_length bit_or
    bit_xor bitmap_and_agg bitmap_bit_position bitmap_bucket_number bitmap_construct_agg
    bitmap_count bitmap_or_agg bool_and bool_or boolean bround btrim cardinality case cast
    cbrt ceil ceiling char char_length character_length chr coalesce collate collation
    collations collect_list collect_set collect_union concat concat_ws contains conv
    convert_timezone corr cos cosh cot count count_if count_min_sketch counter_diff
    covar_pop covar_samp crc32 csc cume_dist curdate current_catalog current_database
    current_date current_path current_schema current_time current_timestamp current_timezone
    current_user date date_add date_diff date_format date_from_unix_date date_part date_sub
    date_trunc dateadd datediff datepart day dayname dayofmonth dayofweek dayofyear decimal
    decode degrees dense_rank div double e element_at elt encode endswith equal_null every
    exists exp explode explode_outer expm1 extract factorial filter find_in_set first
    first_value flatten float floor forall format_number format_string from_avro from_base32
    from_csv from_json from_protobuf from_unixtime from_utc_timestamp from_xml get
    get_json_object getbit greatest grouping grouping_id hash hex histogram_numeric
    hll_sketch_agg hll_sketch_estimate hll_union hll_union_agg hmac hour hypot if ifnull
    ilike in initcap inline inline_outer input_file_block_length input_file_block_start
    input_file_name instr int is_valid_utf8 is_valid_variant is_variant_null isnan isnotnull
    isnull jaro_winkler_similarity java_method json_array_length json_object_keys json_tuple
    kll_merge_agg_bigint kll_merge_agg_double kll_merge_agg_float kll_sketch_agg_bigint
    kll_sketch_agg_double kll_sketch_agg_float kll_sketch_get_n_bigint
    kll_sketch_get_n_double kll_sketch_get_n_float kll_sketch_get_quantile_bigint
    kll_sketch_get_quantile_double kll_sketch_get_quantile_float kll_sketch_get_rank_bigint
    kll_sketch_get_rank_double kll_sketch_get_rank_float kll_sketch_merge_bigint
    kll_sketch_merge_double kll_sketch_merge_float kll_sketch_to_string_bigint
    kll_sketch_to_string_double kll_sketch_to_string_float kurtosis lag last last_day
    last_value lcase lead least left len length levenshtein like listagg ln localtime
    localtimestamp locate log log10 log1p log2 lower lpad ltrim luhn_check make_date
    make_dt_interval make_interval make_time make_timestamp make_timestamp_ltz
    make_timestamp_ntz make_valid_utf8 make_ym_interval map map_concat map_contains_key
    map_entries map_filter map_from_arrays map_from_entries map_keys map_values map_zip_with
    mask max max_by md5 mean measure median min min_by minute mod mode
    monotonically_increasing_id month monthname months_between named_struct nanvl negative
    next_day not now nth_value ntile nullif nullifzero nvl nvl2 octet_length or overlay
    parse_json parse_url percent_rank percentile percentile_approx percentile_cont
    percentile_disc pi pmod posexplode posexplode_outer position positive pow power printf
    python_worker_logs quarter quote radians raise_error rand randn random randstr range
    rank reduce reflect regexp regexp_count regexp_extract regexp_extract_all regexp_instr
    regexp_like regexp_replace regexp_substr regr_avgx regr_avgy regr_count regr_intercept
    regr_r2 regr_slope regr_sxx regr_sxy regr_syy repeat replace reverse right rint rlike
    round row_number rpad rtrim schema_of_avro schema_of_csv schema_of_json
    schema_of_variant schema_of_variant_agg schema_of_xml sec second sentences sequence
    session_user session_window sha sha1 sha2 shiftleft shiftright shiftrightunsigned
    shuffle sign signum sin sinh size skewness slice smallint some sort_array soundex space
    spark_partition_id split split_part sql_keywords sqrt st_asbinary st_geogfromwkb
    st_geomfromwkb st_setsrid st_srid stack startswith std stddev stddev_pop stddev_samp
    str_to_map string string_agg struct substr substring substring_index sum tan tanh
    theta_difference theta_intersection theta_intersection_agg theta_sketch_agg
    theta_sketch_estimate theta_union theta_union_agg time time_bucket time_diff
    time_from_micros time_from_millis time_from_seconds time_to_micros time_to_millis
    time_to_seconds time_trunc timestamp timestamp_micros timestamp_millis timestamp_nanos
    timestamp_seconds tinyint to_avro to_base32 to_binary to_char to_csv to_date to_json
    to_number to_protobuf to_time to_timestamp to_timestamp_ltz to_timestamp_ntz
    to_unix_timestamp to_utc_timestamp to_varchar to_variant_object to_xml transform
    transform_keys transform_values translate trim trunc try_add try_aes_decrypt try_avg
    try_divide try_element_at try_make_interval try_make_timestamp try_make_timestamp_ltz
    try_make_timestamp_ntz try_mod try_multiply try_parse_json try_parse_url try_reflect
    try_subtract try_sum try_to_binary try_to_date try_to_number try_to_time
    try_to_timestamp try_url_decode try_validate_utf8 try_variant_array_append
    try_variant_get try_variant_insert try_variant_set tuple_difference_double
    tuple_difference_integer tuple_difference_theta_double tuple_difference_theta_integer
    tuple_intersection_agg_double tuple_intersection_agg_integer tuple_intersection_double
    tuple_intersection_integer tuple_intersection_theta_double
    tuple_intersection_theta_integer tuple_sketch_agg_double tuple_sketch_agg_integer
    tuple_sketch_estimate_double tuple_sketch_estimate_integer tuple_sketch_summary_double
    tuple_sketch_summary_integer tuple_sketch_theta_double tuple_sketch_theta_integer
    tuple_union_agg_double tuple_union_agg_integer tuple_union_double tuple_union_integer
    tuple_union_theta_double tuple_union_theta_integer typeof ucase unbase64 unhex uniform
    unix_date unix_micros unix_millis unix_nanos unix_seconds unix_timestamp upper
    url_decode url_encode user uuid validate_utf8 var_pop var_samp variance
    variant_array_append variant_delete variant_explode variant_explode_outer variant_get
    variant_insert variant_set variant_strip_nulls vector_avg vector_cosine_similarity
    vector_inner_product vector_l2_distance vector_norm vector_normalize vector_sum version
    weekday weekofyear when width_bucket window window_time xpath xpath_boolean xpath_double
    xpath_float xpath_int xpath_long xpath_number xpath_short xpath_string xxhash64 year
    zeroifnull zip_with
"""
# the ones Spark runs as a table source (`FROM range(3) AS t(i)`: table-valued functions)
_SPARK_TABLE_FUNCTIONS = """
    collations explode explode_outer inline inline_outer json_tuple posexplode
    posexplode_outer range sql_keywords stack variant_explode variant_explode_outer
"""


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
        _refuse_unknown_functions(tree, text, path)


_SPARK_NAMES = frozenset(_SPARK_FUNCTIONS.split())
_SPARK_TABLE_NAMES = frozenset(_SPARK_TABLE_FUNCTIONS.split())


def _refuse_unknown_functions(tree, text: str, path: str) -> None:
    """A function sqlglot does not know passes through by name (DuckDB's `to_hours(h)`
    becomes `TO_HOURS(h)`), and Spark fails on it at run time: every function call in the
    Spark SQL that sqlglot's Spark dialect does not know must be a Spark built-in, and
    every function in a FROM clause a Spark table-valued function. A qualified name
    (`db.my_udf(x)`) is a function of the catalog: left to Spark."""
    import sqlglot
    from sqlglot import exp

    written = sqlglot.parse_one(text, read="spark")
    for node in written.find_all(exp.Func):
        name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
        if isinstance(node.parent, exp.Table) and node.parent.this is node:
            if name not in _SPARK_TABLE_NAMES:
                what = f"the table function {name}()"
                raise _refuse_at(tree, name, what, path, "Spark's are " + _listed())
        elif isinstance(node, exp.Anonymous) and not isinstance(node.parent, exp.Dot):
            if name not in _SPARK_NAMES:
                raise _refuse_at(
                    tree,
                    name,
                    f"the function {name}()",
                    path,
                    f"Spark has no built-in {name}(): write it with functions both dialects "
                    "share; call a function of your catalog by its qualified name "
                    "(schema.function)",
                )


def _listed() -> str:
    return ", ".join(sorted(_SPARK_TABLE_NAMES))


def _refuse_at(tree, name: str, what: str, path: str, hint: str) -> SqlError:
    """The SqlError at the model's own call of `name` (its line), where it finds one."""
    from sqlglot import exp

    for node in tree.find_all(exp.Func):
        mine = node.name if isinstance(node, exp.Anonymous) else node.sql("spark")
        if mine.lower().split("(", 1)[0] == name:
            return _refuse(node, "spark", what, path, hint)
    return SqlError(f"{what} cannot run on spark", at=SourceLocation(path), hint=hint)


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
