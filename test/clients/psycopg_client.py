"""The workload through psycopg 3 (Debian's python3-psycopg): every query a
server-side prepared statement (prepare_threshold=0), executemany, pipeline
mode, COPY both ways (text and binary), cancel from another thread."""
import datetime
import decimal
import sys
import threading

import psycopg

from clientlib import DSN, ITEMS, REF, TYPES_SQL, attempt, item_rows, run_sync

INSERT = "insert into %s (id, name, qty, price, at, ok, tags) values (%%s, %%s, %%s, %%s, %%s, %%s, %%s)" % ITEMS


def connect():
    return psycopg.connect(DSN, autocommit=True, prepare_threshold=0, application_name="drv-psycopg",
                           options="-c TimeZone=Asia/Tokyo -c search_path=public")


def rows(cur):
    return repr([[d.name for d in cur.description or []], cur.fetchall() if cur.description else cur.statusmessage])


def q(c, sql, params=None, **kw):
    return rows(c.execute(sql, params, **kw))


def settings(c):
    return [c.execute("show " + s).fetchone()[0] for s in ("application_name", "client_encoding", "TimeZone", "search_path")]


def params(c):
    ts = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)
    return q(c, "select %s::int + 1 as a, %s::text || %s::text as b, %s::numeric * 2 as c, %s::timestamptz as d, "
             "not %s as e, %s::int as f, %s::int[] as g", (41, "x", "y", decimal.Decimal("1.25"), ts, True, None, [1, None, 3]))


def insert(c):
    return [c.execute(INSERT, r).statusmessage for r in item_rows(1, 10)]


def executemany(c):
    with c.cursor() as cur:
        cur.executemany(INSERT, item_rows(11, 25))
        return cur.rowcount


def pipeline(c):
    with c.pipeline():
        curs = [c.execute(INSERT, r) for r in item_rows(26, 30)]
        sel = c.execute("select count(*) from %s where id between %%s and %%s" % ITEMS, (26, 30))
    return [cu.statusmessage for cu in curs] + [sel.fetchone()[0]]


def pipeline_error(c):
    out = []
    try:
        with c.pipeline():
            c.execute(INSERT, item_rows(31, 31)[0])
            c.execute(INSERT, item_rows(1, 1)[0])
            c.execute(INSERT, item_rows(32, 32)[0])
    except psycopg.Error as e:
        out.append("ERROR " + (e.sqlstate or ""))
    return out + [c.execute("select id from %s where id between 31 and 32 order by id" % ITEMS).fetchall()]


def prepared(c):
    sql = "select id, name, qty from %s where id = %%s" % ITEMS
    return [q(c, sql, (k,), prepare=True) for k in (3, 4, 7, 999)]


def after(c):
    return c.execute("select %s::int + 1", (1,)).fetchone()[0]


def tx_commit(c):
    with c.transaction():
        a = c.execute("update %s set name = 'tx' where id = 2" % ITEMS).statusmessage
        b = c.execute("update %s set name = 'tx' where id = %%s" % ITEMS, (3,)).statusmessage
    return [a, b, q(c, "select id, name from %s where id in (2, 3) order by id" % ITEMS)]


def tx_rollback(c):
    out = []
    try:
        with c.transaction():
            out.append(c.execute("delete from %s where id = 4" % ITEMS).statusmessage)
            raise psycopg.Rollback()
    finally:
        out.append(c.execute("select count(*) from %s" % ITEMS).fetchone()[0])
    return out


def tx_error(c):
    """An error inside a transaction: psycopg then rolls back (and, with
    prepared statements, sends DEALLOCATE ALL as the issue describes)."""
    out = []
    try:
        with c.transaction():
            out.append(attempt(lambda: c.execute("select 1 / %s::int", (0,)).fetchone()))
            out.append(attempt(lambda: c.execute("select 1").fetchone()))
    except psycopg.Error as e:
        out.append("ERROR " + (e.sqlstate or ""))
    return out + [c.execute("select 2").fetchone()[0], q(c, "select %s::int * 2 as x", (21,))]


def savepoint(c):
    out = []
    with c.transaction():
        out.append(c.execute(INSERT, item_rows(40, 40)[0]).statusmessage)
        try:
            with c.transaction():  # a SAVEPOINT
                c.execute(INSERT, item_rows(1, 1)[0])
        except psycopg.errors.UniqueViolation as e:
            out.append(e.sqlstate)
        for r in item_rows(41, 43):
            out.append(c.execute(INSERT, r).statusmessage)
    return out + [q(c, "select id, name from %s where id >= 40 order by id" % ITEMS)]


def copy_in(c):
    with c.cursor() as cur:
        with cur.copy("copy %s (id, name, qty, price, at, ok, tags) from stdin" % ITEMS) as cp:
            for r in item_rows(50, 59):
                cp.write_row(r)
        return cur.statusmessage


def copy_in_binary(c):
    with c.cursor() as cur:
        with cur.copy("copy %s (id, name, qty) from stdin (format binary)" % ITEMS) as cp:
            cp.set_types(["int4", "text", "int4"])
            for i in range(60, 65):
                cp.write_row((i, "bin %d" % i, i))
        return cur.statusmessage


def copy_out(c):
    with c.cursor() as cur:
        with cur.copy("copy (select id, name from %s order by id) to stdout" % REF) as cp:
            data = b"".join(bytes(b) for b in cp)
        return [cur.statusmessage, data.decode()]


def copy_out_key(c):
    with c.cursor() as cur:
        with cur.copy("copy (select * from %s where id = 5) to stdout" % ITEMS) as cp:
            data = list(cp.rows())
        return [cur.statusmessage, data]


def update_returning(c):
    return sorted(c.execute("update %s set qty = qty + 1 where id <= 6 returning id, qty" % ITEMS).fetchall())


def ref_write(c):
    st = c.execute("insert into %s values (%%s, %%s)" % REF, (4, "four")).statusmessage
    return [st, q(c, "select * from %s order by id" % REF)]


def cancel(c):
    threading.Timer(0.3, c.cancel).start()
    return c.execute("select pg_sleep(3)").fetchone()


def simple(sql):
    """A query with no parameters: psycopg 3 still uses the extended protocol."""
    return lambda c: q(c, sql)


CHECKS = [
    ("settings", settings), ("types", simple(TYPES_SQL)), ("params", params), ("insert", insert),
    ("executemany", executemany), ("pipeline", pipeline), ("pipeline_error", pipeline_error), ("after_pipeline_error", after),
    ("prepared", prepared), ("select_all", simple("select * from %s order by id" % ITEMS)),
    ("aggregates", simple("select count(*), sum(qty), min(price), max(at), bool_and(ok) from %s" % ITEMS)),
    ("err_syntax", simple("selec 1")), ("after_err_syntax", after),
    ("err_unique", lambda c: c.execute(INSERT, item_rows(1, 1)[0])), ("after_err_unique", after),
    ("err_div", lambda c: c.execute("select 1 / %s::int", (0,)).fetchone()), ("after_err_div", after),
    ("tx_commit", tx_commit), ("tx_rollback", tx_rollback), ("tx_error", tx_error), ("after_tx_error", after),
    ("savepoint", savepoint), ("copy_in", copy_in), ("copy_in_binary", copy_in_binary), ("copy_out", copy_out),
    ("copy_out_key", copy_out_key), ("count", simple("select count(*) from %s" % ITEMS)),
    ("update_returning", update_returning), ("delete_multi", simple("delete from %s where id >= 60" % ITEMS)),
    ("ref_write", ref_write), ("select_all_end", simple("select * from %s order by id" % ITEMS)),
    ("cancel", cancel), ("after_cancel", after), ("settings_end", settings),
]

if __name__ == "__main__":
    run_sync(CHECKS, connect)
