"""The workload through psycopg2 in its default mode: a transaction opened
by the driver before the first statement, committed explicitly. LATIN1
client encoding, SET TimeZone, execute_batch (statements joined with ';'),
execute_values, copy_expert both ways, cancel from another thread."""
import datetime
import decimal
import io
import threading

import psycopg2
import psycopg2.extras

from clientlib import DSN, ITEMS, REF, TYPES_SQL, attempt, item_rows, run_sync

INSERT = "insert into %s (id, name, qty, price, at, ok, tags) values (%%s, %%s, %%s, %%s, %%s, %%s, %%s)" % ITEMS


def connect():
    c = psycopg2.connect(DSN, application_name="drv-psycopg2", client_encoding="LATIN1")
    with c.cursor() as cur:
        cur.execute("set TimeZone = 'Europe/Lisbon'")
    c.commit()
    return c


def run(c, sql, params=None, commit=True):
    with c.cursor() as cur:
        cur.execute(sql, params)
        out = [[d.name for d in cur.description], cur.fetchall()] if cur.description else [cur.statusmessage, cur.rowcount]
    if commit:
        c.commit()
    return repr(out)


def guarded(fn):
    """psycopg2's transaction stays aborted after an error: roll it back, as
    applications do, so the error does not bleed into the next check."""
    def check(c):
        try:
            return fn(c)
        except psycopg2.Error:
            c.rollback()
            raise
    return check


def settings(c):
    return [run(c, "show " + s) for s in ("application_name", "client_encoding", "TimeZone", "search_path")]


def params(c):
    ts = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)
    return run(c, "select %s::int + 1 as a, %s::text || %s::text as b, %s::numeric * 2 as c, %s::timestamptz as d, "
               "not %s as e, %s::int as f, %s::int[] as g", (41, "x", "y", decimal.Decimal("1.25"), ts, True, None, [1, None, 3]))


def insert(c):
    out = [run(c, INSERT, r, commit=False) for r in item_rows(1, 10)]
    c.commit()
    return out


def execute_batch(c):
    with c.cursor() as cur:
        psycopg2.extras.execute_batch(cur, INSERT, item_rows(11, 25), page_size=5)
    c.commit()
    return run(c, "select count(*) from %s" % ITEMS)


def execute_values(c):
    with c.cursor() as cur:
        psycopg2.extras.execute_values(cur, "insert into %s (id, name, qty, price, at, ok, tags) values %%s" % ITEMS, item_rows(26, 30))
        n = cur.rowcount
    c.commit()
    return n


def after(c):
    return run(c, "select %s::int + 1", (1,))


def tx_commit(c):
    a = run(c, "update %s set name = 'tx' where id = 2" % ITEMS, commit=False)
    b = run(c, "update %s set name = 'tx' where id = %%s" % ITEMS, (3,), commit=False)
    c.commit()
    return [a, b, run(c, "select id, name from %s where id in (2, 3) order by id" % ITEMS)]


def tx_rollback(c):
    a = run(c, "delete from %s where id = 4" % ITEMS, commit=False)
    c.rollback()
    return [a, run(c, "select count(*) from %s" % ITEMS)]


def tx_error(c):
    out = [attempt(run, c, "select 1 / %s::int", (0,), False), attempt(run, c, "select 1", None, False)]
    c.rollback()
    return out + [run(c, "select 2")]


def savepoint(c):
    out = [run(c, INSERT, item_rows(40, 40)[0], commit=False), run(c, "savepoint a", commit=False),
           attempt(run, c, INSERT, item_rows(1, 1)[0], False), run(c, "rollback to savepoint a", commit=False)]
    out += [run(c, INSERT, r, commit=False) for r in item_rows(41, 43)]
    out.append(run(c, "release savepoint a", commit=False))
    c.commit()
    return out + [run(c, "select id, name from %s where id >= 40 order by id" % ITEMS)]


def copy_in(c):
    """COPY outside a transaction (autocommit), as pgrouter documents for
    COPY into several shards."""
    data = "".join("%d\tcopied %d é\t%d\n" % (i, i, i) for i in range(50, 60))
    c.autocommit = True
    try:
        with c.cursor() as cur:
            cur.copy_expert("copy %s (id, name, qty) from stdin" % ITEMS, io.StringIO(data))
            return cur.rowcount
    finally:
        c.autocommit = False


def copy_in_tx(c):
    """COPY in psycopg2's default transaction, rolled back (on two shards it
    runs on the transaction's backends, with two_phase_commit)."""
    data = "".join("%d\tcopied %d\t%d\n" % (i, i, i) for i in range(70, 73))
    try:
        with c.cursor() as cur:
            cur.copy_expert("copy %s (id, name, qty) from stdin" % ITEMS, io.StringIO(data))
            return cur.rowcount
    finally:
        c.rollback()


def copy_out(c, sql):
    buf = io.StringIO()
    with c.cursor() as cur:
        cur.copy_expert(sql, buf)
        n = cur.rowcount
    c.commit()
    return [n, buf.getvalue()]


def update_returning(c):
    with c.cursor() as cur:
        cur.execute("update %s set qty = qty + 1 where id <= 6 returning id, qty" % ITEMS)
        rows = sorted(cur.fetchall())
    c.commit()
    return rows


def cancel(c):
    threading.Timer(0.3, c.cancel).start()
    return run(c, "select pg_sleep(3)")


def simple(sql):
    return lambda c: run(c, sql)


CHECKS = [(name, guarded(fn)) for name, fn in [
    ("settings", settings), ("types", simple(TYPES_SQL)), ("params", params), ("insert", insert),
    ("execute_batch", execute_batch), ("execute_values", execute_values),
    ("select_all", simple("select * from %s order by id" % ITEMS)),
    ("aggregates", simple("select count(*), sum(qty), min(price), max(at), bool_and(ok) from %s" % ITEMS)),
    ("err_syntax", simple("selec 1")), ("after_err_syntax", after),
    ("err_unique", lambda c: run(c, INSERT, item_rows(1, 1)[0])), ("after_err_unique", after),
    ("err_div", simple("select 1/0")), ("after_err_div", after),
    ("err_simple_div", simple("select 1; select 1/0; select 2")), ("after_err_simple_div", after),
    ("tx_commit", tx_commit), ("tx_rollback", tx_rollback), ("tx_error", tx_error), ("savepoint", savepoint),
    ("copy_in", copy_in), ("copy_in_tx", copy_in_tx), ("copy_out", lambda c: copy_out(c, "copy (select id, name from %s order by id) to stdout" % REF)),
    ("copy_out_key", lambda c: copy_out(c, "copy (select * from %s where id = 5) to stdout with (format csv)" % ITEMS)),
    ("count", simple("select count(*) from %s" % ITEMS)),
    ("update_returning", update_returning), ("delete_multi", simple("delete from %s where id >= 55" % ITEMS)),
    ("ref_write", lambda c: [run(c, "insert into %s values (%%s, %%s)" % REF, (4, "four")), run(c, "select * from %s order by id" % REF)]),
    ("select_all_end", simple("select * from %s order by id" % ITEMS)),
    ("cancel", cancel), ("after_cancel", after), ("settings_end", settings),
]]

if __name__ == "__main__":
    run_sync(CHECKS, connect)
