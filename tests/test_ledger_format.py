"""The ledger's one-column format (adapters/ledgertext.py), on DuckDB and Postgres: a
warehouse whose ledger has the first format's columns keeps every promise after the
next run converts it, and the conversion is all or nothing."""

from __future__ import annotations

import pytest

from pipe.ledger import Entry, decode_row, encode_row, fold
from test_contract import engine, load_events, pytest_generate_tests  # noqa: F401
from test_gaps import EVENTS, pipe, status

OLD_COLUMNS = (
    "model varchar not null, interval_start varchar not null, interval_end varchar not null, "
    "fingerprint varchar not null, rows bigint, published_at double precision not null"
)
EXTRA = ", reads varchar, partial boolean, replaced bigint"


def _old_literal(v) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return repr(v)


def _old_row(key, e: Entry, extra: bool) -> str:
    from pipe.ledger import encode_reads

    values = [*key, e.fingerprint, e.rows, e.published_at]
    if extra:
        values += [encode_reads(e.reads) if e.reads else None, e.partial, e.replaced]
    return "(" + ", ".join(map(_old_literal, values)) + ")"


def _to_first_format(wh, extra: bool) -> dict:
    """Rewrite the warehouse's ledger as pipe wrote it before this format (with the
    reads/partial/replaced columns, or without them as the oldest ledgers), adding a
    superseded row and a tombstoned key; return the entries it stands for."""
    rows = [decode_row(text) for (text,) in wh.query("select entry from _pipe.ledger")]
    current = fold(rows)
    (key, entry), *_ = sorted(current.items())
    history = [
        (key, Entry("an older fingerprint", entry.published_at - 100, 7)),
        (("marts.daily", "2026-05-01T00:00:00", "2026-05-02T00:00:00"), Entry("fp", 1.0, 1)),
        (("marts.daily", "2026-05-01T00:00:00", "2026-05-02T00:00:00"), Entry("", 2.0)),
    ]
    wh.execute(
        "drop table _pipe.ledger; "
        f"create table _pipe.ledger ({OLD_COLUMNS}{EXTRA if extra else ''}); "
        "insert into _pipe.ledger values "
        + ", ".join(_old_row(k, e, extra) for k, e in [*history, *rows])
    )
    return current


@pytest.mark.parametrize("extra", [True, False], ids=["with-reads", "oldest"])
def test_a_first_format_ledger_is_converted_and_keeps_every_promise(engine, extra):  # noqa: F811
    root = engine.project(EVENTS)
    wh = engine.warehouse(root)
    load_events(wh, {"2026-06-01": 1, "2026-06-02": 2})
    for day in ("2026-06-01", "2026-06-02"):
        assert pipe(root, "run", "--interval", day)[0] == 0
    current = _to_first_format(wh, extra)

    # nothing is rebuilt: the converted ledger says all four intervals are published
    code, out = pipe(root, "run", "--interval", "2026-06-01")
    assert code == 0, out
    assert "2 skipped" in out, out
    assert [c.lower() for c, _ in engine_columns(wh)] == ["entry"]
    converted = [decode_row(text) for (text,) in wh.query("select entry from _pipe.ledger")]
    expected = (
        current
        if extra
        else {k: Entry(e.fingerprint, e.published_at, e.rows) for k, e in current.items()}
    )
    assert fold(converted) == expected
    assert len(converted) == len(expected)  # the history is folded away
    if not extra:
        return
    # what a publish read survives the conversion: republishing still cascades
    load_events(wh, {"2026-06-01": 10, "2026-06-02": 2})
    code, out = pipe(
        root, "run", "--interval", "2026-06-01", "--select", "staging.events", "--force"
    )
    assert code == 0, out
    [item] = status(root)["stale"]
    assert (item["model"], item["start"]) == ("marts.daily", "2026-06-01T00:00:00")


def engine_columns(wh) -> list[tuple]:
    return wh.query(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = '_pipe' and table_name = 'ledger' order by ordinal_position"
    )


def test_a_ledger_row_is_its_key_first_and_round_trips():
    from pipe.ledger import Read, row_prefix

    key = ("mart.o'brien \u00e9", "2026-06-01T00:00:00", "2026-06-02T00:00:00")
    entry = Entry(
        "fp",
        1764500000.123456,
        12,
        (Read(("a.b", "", ""), 1764400000.5), Read(("a.a", "", ""), 3.25)),
        True,
        9,
    )
    text = encode_row(key, entry)
    assert text.isascii() and text.startswith(row_prefix(key[0]))
    got_key, got = decode_row(text)
    assert got_key == key
    assert got == Entry(
        entry.fingerprint,
        entry.published_at,
        12,
        tuple(sorted(entry.reads, key=lambda r: r.key)),
        True,
        9,
    )
    assert fold([(key, entry), (key, Entry("", entry.published_at + 1))]) == {}


def _ledger_refusing(wh, model: str | None) -> None:
    """Put the ledger's rows back in a table that refuses new rows of `model` (a CHECK
    that lets its rows of now through), or accepts every row again (None)."""
    check = ""
    if model:
        prefix = f'["{model}",'
        kept = [e for (e,) in wh.query("select entry from _pipe.ledger") if e.startswith(prefix)]
        allowed = ", ".join("'" + e.replace("'", "''") + "'" for e in kept)
        check = f" check (entry not like '{prefix}%' or entry in ({allowed}))"
    wh.execute(
        f"create table _pipe.ledger_new (entry varchar{check}); "
        "insert into _pipe.ledger_new select entry from _pipe.ledger; "
        "drop table _pipe.ledger; alter table _pipe.ledger_new rename to ledger"
    )


def test_a_ledger_row_that_fails_with_the_commit_publishes_nothing(engine):  # noqa: F811
    """The drop, the rename and the ledger row of a full model go to the engine in one
    call with the COMMIT: when the ledger row fails there, the task fails and its table,
    the ledger and the temp tables are as before; the next run publishes it."""
    root = engine.project(
        {"models/a/x.sql": "select 1 as v", "models/a/y.sql": "select v + 1 as v from a.x"}
    )
    wh = engine.warehouse(root)
    assert pipe(root, "run", "--interval", "2026-06-01")[0] == 0
    before = sorted(wh.query("select entry from _pipe.ledger"))
    _ledger_refusing(wh, "a.y")
    (root / "models/a/y.sql").write_text("select v + 2 as v from a.x")
    assert pipe(root, "compile", "--interval", "2026-06-01")[0] == 0
    code, out = pipe(root, "run", "--interval", "2026-06-01")
    assert code == 1, out
    assert wh.query("select v from a.y") == [(2,)]
    assert sorted(wh.query("select entry from _pipe.ledger")) == before
    assert not [r for r in wh.relations() if "tmp" in r]

    _ledger_refusing(wh, None)
    code, out = pipe(root, "run", "--interval", "2026-06-01")
    assert code == 0, out
    assert wh.query("select v from a.y") == [(3,)]


def test_compaction_keeps_the_latest_row_of_each_published_key(tmp_path):
    """compact_ledger folds the history in one transaction: the entries read before and
    after are equal, superseded rows and tombstones are gone, and a shadow's rows can be
    forgotten by their key's prefix."""
    from pipe.adapters.duckdb import DuckDBAdapter
    from pipe.config import Target

    wh = DuckDBAdapter(Target("dev", "duckdb", "duckdb", (("path", "w.duckdb"),)), tmp_path)
    wh.ensure_ledger()
    day = ("2026-06-01T00:00:00", "2026-06-02T00:00:00")
    with wh.transaction():
        for i in range(3):
            wh.record_published(("a.x", *day), Entry(f"fp{i}", 10.0 + i, i))
        wh.record_published(("a.gone", *day), Entry("fp", 1.0, 1))
        wh.record_published(("a.x__pipe_tmp_refresh", *day), Entry("fp", 2.0, 1))
    wh.record_removed([("a.gone", *day)], 20.0)
    current = wh.read_ledger()
    assert current == {
        ("a.x", *day): Entry("fp2", 12.0, 2),
        ("a.x__pipe_tmp_refresh", *day): Entry("fp", 2.0, 1),
    }
    assert wh.ledger_rows == 6
    assert wh.compact_ledger() == 4
    assert wh.read_ledger() == current and wh.ledger_rows == 2
    wh.forget_ledger("a.x__pipe_tmp_refresh")
    assert wh.read_ledger() == {("a.x", *day): Entry("fp2", 12.0, 2)}
    wh.close()
