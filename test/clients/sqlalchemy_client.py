"""The workload through SQLAlchemy (Core, psycopg2 dialect, its own
connection pool which rolls back on every return): reflection, executemany
with dicts, begin_nested savepoints, server-side cursors."""
import datetime
import decimal
import sys

import sqlalchemy as sa

from clientlib import DSN, ITEMS, REF, TYPES_SQL, attempt, item_rows, run_sync

COLS = ("id", "name", "qty", "price", "at", "ok", "tags")
INSERT = sa.text("insert into %s (id, name, qty, price, at, ok, tags) values (:id, :name, :qty, :price, :at, :ok, :tags)" % ITEMS)


def connect():
    url = DSN.replace("postgres://", "postgresql+psycopg2://", 1)
    engine = sa.create_engine(url, pool_size=3, max_overflow=0, future=True,
                              connect_args={"application_name": "drv-sqlalchemy", "options": "-c TimeZone=UTC-3"})
    with engine.connect():
        pass  # dial now, so a failing login shows at the first check
    return engine


def dicts(first, last):
    return [dict(zip(COLS, r)) for r in item_rows(first, last)]


def q(e, sql, params=None):
    with e.connect() as c:
        r = c.execute(sa.text(sql), params or {})
        return repr([list(r.keys()), [tuple(x) for x in r]] if r.returns_rows else r.rowcount)


def settings(e):
    return [q(e, "show " + s) for s in ("application_name", "client_encoding", "TimeZone", "search_path")]


def params(e):
    ts = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)
    return q(e, "select cast(:a as int) + 1 as a, :b || :c as b, cast(:d as numeric) * 2 as c, cast(:e as timestamptz) as d",
             {"a": 41, "b": "x", "c": "y", "d": decimal.Decimal("1.25"), "e": ts})


def insert(e):
    with e.begin() as c:
        return [c.execute(INSERT, d).rowcount for d in dicts(1, 10)]


def executemany(e):
    with e.begin() as c:
        return c.execute(INSERT, dicts(11, 30)).rowcount


def reflect(e):
    t = sa.Table(ITEMS, sa.MetaData(), autoload_with=e)
    with e.connect() as c:
        rows = c.execute(sa.select(t.c.id, t.c.name).where(t.c.id.in_([1, 2, 3, 17])).order_by(t.c.id)).all()
    return [[(col.name, str(col.type)) for col in t.columns], rows]


def after(e):
    return q(e, "select cast(:x as int) + 1", {"x": 1})


def tx_commit(e):
    with e.begin() as c:
        a = c.execute(sa.text("update %s set name = 'tx' where id = 2" % ITEMS)).rowcount
        b = c.execute(sa.text("update %s set name = 'tx' where id = :id" % ITEMS), {"id": 3}).rowcount
    return [a, b, q(e, "select id, name from %s where id in (2, 3) order by id" % ITEMS)]


def tx_rollback(e):
    with e.connect() as c:
        tx = c.begin()
        a = c.execute(sa.text("delete from %s where id = 4" % ITEMS)).rowcount
        tx.rollback()
    return [a, q(e, "select count(*) from %s" % ITEMS)]


def tx_error(e):
    with e.connect() as c:
        tx = c.begin()
        out = [attempt(lambda: c.execute(sa.text("select 1 / :x"), {"x": 0}).all()),
               attempt(lambda: c.execute(sa.text("select 1")).all())]
        tx.rollback()
    return out + [q(e, "select 2")]


def savepoint(e):
    out = []
    with e.begin() as c:
        out.append(c.execute(INSERT, dicts(40, 40)[0]).rowcount)
        try:
            with c.begin_nested():
                c.execute(INSERT, dicts(1, 1)[0])
        except sa.exc.IntegrityError as err:
            out.append(err.orig.pgcode)
        out.append(c.execute(INSERT, dicts(41, 43)).rowcount)
    return out + [q(e, "select id, name from %s where id >= 40 order by id" % ITEMS)]


def stream(e):
    """A server-side cursor (DECLARE … FETCH inside a transaction)."""
    with e.connect() as c:
        r = c.execution_options(stream_results=True, max_row_buffer=4).execute(sa.text("select id from %s order by id" % ITEMS))
        return [x[0] for x in r]


def update_returning(e):
    with e.begin() as c:
        return sorted(tuple(r) for r in c.execute(sa.text("update %s set qty = qty + 1 where id <= 6 returning id, qty" % ITEMS)))


def ref_write(e):
    with e.begin() as c:
        n = c.execute(sa.text("insert into %s values (:i, :n)" % REF), [{"i": 4, "n": "four"}, {"i": 5, "n": "five"}]).rowcount
    return [n, q(e, "select * from %s order by id" % REF)]


def pool(e):
    """More checkouts than the pool has connections, each leaving state."""
    out = []
    for i in range(12):
        with e.connect() as c:
            out.append(c.execute(sa.text("select cast(:i as int) * 2"), {"i": i}).scalar())
            c.execute(sa.text("select 1"))
    return out


def simple(sql):
    return lambda e: q(e, sql)


CHECKS = [
    ("settings", settings), ("types", simple(TYPES_SQL)), ("params", params), ("insert", insert),
    ("executemany", executemany), ("reflect", reflect), ("select_all", simple("select * from %s order by id" % ITEMS)),
    ("aggregates", simple("select count(*), sum(qty), min(price), max(at), bool_and(ok) from %s" % ITEMS)),
    ("err_syntax", simple("selec 1")), ("after_err_syntax", after),
    ("err_unique", lambda e: q(e, INSERT.text, dicts(1, 1)[0])), ("after_err_unique", after),
    ("err_div", simple("select 1/0")), ("after_err_div", after),
    ("tx_commit", tx_commit), ("tx_rollback", tx_rollback), ("tx_error", tx_error), ("savepoint", savepoint),
    ("stream", stream), ("update_returning", update_returning),
    ("delete_multi", simple("delete from %s where id >= 25" % ITEMS)), ("ref_write", ref_write),
    ("select_all_end", simple("select * from %s order by id" % ITEMS)), ("pool", pool), ("settings_end", settings),
]

if __name__ == "__main__":
    run_sync(CHECKS, connect)
