"""Drives pgrouter with psycopg 3 (Debian's python3-psycopg); prints "ok <check>", exits 1 on failure."""
import sys

import psycopg


def check(cond, what):
    if not cond:
        raise SystemExit("check failed: " + what)
    print("ok " + what)


with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    check(conn.execute("select 40 + 2").fetchone()[0] == 42, "simple query")
    check(conn.execute("select %s::int * 2", (21,)).fetchone()[0] == 42, "parameters")
    conn.execute("create table if not exists py_t (id int primary key, v text)")
    conn.execute("truncate py_t")
    for i in range(20):
        conn.execute("insert into py_t values (%s, %s)", (i, "v%d" % i), prepare=True)
    check(conn.execute("select count(*) from py_t", prepare=True).fetchone()[0] == 20, "prepared statements")
    with conn.cursor() as cur:
        with cur.copy("copy py_t (id, v) from stdin") as cp:
            for i in range(20, 30):
                cp.write_row((i, "c%d" % i))
    check(conn.execute("select count(*) from py_t").fetchone()[0] == 30, "copy from stdin")
    with conn.transaction():
        conn.execute("update py_t set v = 'tx' where id = 1")
    check(conn.execute("select v from py_t where id = 1").fetchone()[0] == "tx", "transaction")
    try:
        conn.execute("select 1/0")
        check(False, "error")
    except psycopg.errors.DivisionByZero:
        check(True, "error code")
    check(conn.execute("select 1").fetchone()[0] == 1, "usable after error")
