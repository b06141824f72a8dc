"""The workload through asyncpg: prepared statements (its statement cache),
executemany, binary COPY, timeouts that cancel, its Pool (RESET ALL on every
release) and 200 concurrent connections."""
import asyncio
import datetime
import decimal
import io
import sys

import asyncpg

from clientlib import DSN, ITEMS, REF, TRUST_DSN, TYPES_SQL, attempt_async, item_rows, run_async

SETTINGS = {"application_name": "drv-asyncpg", "TimeZone": "America/New_York", "search_path": "public, pg_catalog"}
INSERT = "insert into %s (id, name, qty, price, at, ok, tags) values ($1, $2, $3, $4, $5, $6, $7)" % ITEMS


async def connect():
    return await asyncpg.connect(DSN, server_settings=SETTINGS)


def rows(rs):
    return repr([tuple(r.items()) for r in rs])


async def settings(c):
    return [await c.fetchval("show " + s) for s in ("application_name", "client_encoding", "TimeZone", "search_path")]


async def types(c):
    return rows(await c.fetch(TYPES_SQL))


async def params(c):
    ts = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)
    return rows(await c.fetch("select $1::int + 1 as a, $2::text || $3::text as b, $4::numeric * 2 as c, $5::timestamptz as d, "
                              "not $6::bool as e, $7::int as f, $8::int[] as g",
                              41, "x", "y", decimal.Decimal("1.25"), ts, True, None, [1, None, 3]))


async def insert(c):
    return [await c.execute(INSERT, *r) for r in item_rows(1, 10)]


async def executemany(c):
    return repr(await c.executemany(INSERT, item_rows(11, 30)))


async def prepared(c):
    st = await c.prepare("select id, name, qty from %s where id = $1" % ITEMS)
    out = [[a.name for a in st.get_attributes()], [p.name for p in st.get_parameters()]]
    for k in (3, 4, 7, 999):
        out.append(rows(await st.fetch(k)))
    return out


async def select_all(c):
    return rows(await c.fetch("select * from %s order by id" % ITEMS))


async def aggregates(c):
    return rows(await c.fetch("select count(*), sum(qty), min(price), max(at), bool_and(ok) from %s" % ITEMS))


async def err_syntax(c):
    return await c.execute("selec 1")


async def err_syntax_ext(c):
    return await c.fetch("selec $1::int", 1)


async def err_unique(c):
    return await c.execute(INSERT, *item_rows(1, 1)[0])


async def err_div(c):
    return await c.fetchval("select 1 / $1::int", 0)


async def err_simple_div(c):
    return await c.execute("select 1; select 1/0; select 2")


async def after(c):
    return await c.fetchval("select $1::int + 1", 1)


async def tx_commit(c):
    async with c.transaction():
        a = await c.execute("update %s set name = 'tx' where id = 2" % ITEMS)
        b = await c.execute("update %s set name = 'tx' where id = $1" % ITEMS, 3)
    return [a, b, rows(await c.fetch("select id, name from %s where id in (2, 3) order by id" % ITEMS))]


async def tx_rollback(c):
    tr = c.transaction()
    await tr.start()
    a = await c.execute("delete from %s where id = 4" % ITEMS)
    await tr.rollback()
    return [a, await c.fetchval("select count(*) from %s" % ITEMS)]


async def tx_error(c):
    tr = c.transaction()
    await tr.start()
    out = [await attempt_async(c.fetchval("select 1 / $1::int", 0)), await attempt_async(c.fetchval("select 1"))]
    await tr.rollback()
    return out + [await c.fetchval("select 2")]


async def savepoint(c):
    async with c.transaction():
        out = [await c.execute(INSERT, *item_rows(40, 40)[0])]
        try:
            async with c.transaction():  # a SAVEPOINT
                await c.execute(INSERT, *item_rows(1, 1)[0])
        except asyncpg.PostgresError as e:
            out.append(e.sqlstate)
        for r in item_rows(41, 43):
            out.append(await c.execute(INSERT, *r))
    return out + [rows(await c.fetch("select id, name from %s where id >= 40 order by id" % ITEMS))]


async def copy_in(c):
    return await c.copy_records_to_table(ITEMS, records=item_rows(50, 59), columns=["id", "name", "qty", "price", "at", "ok", "tags"])


async def copy_in_text(c):
    data = "".join("%d\tcopied %d\t%d\n" % (i, i, i) for i in range(60, 65)).encode()
    return await c.copy_to_table(ITEMS, source=io.BytesIO(data), columns=["id", "name", "qty"])


async def copy_out(c):
    buf = io.BytesIO()
    st = await c.copy_from_query("select id, name from %s order by id" % REF, output=buf)
    return [st, buf.getvalue().decode()]


async def copy_out_key(c):
    buf = io.BytesIO()
    st = await c.copy_from_query("select * from %s where id = 5" % ITEMS, output=buf)
    return [st, buf.getvalue().decode()]


async def count(c):
    return await c.fetchval("select count(*) from %s" % ITEMS)


async def update_returning(c):
    return sorted(tuple(r) for r in await c.fetch("update %s set qty = qty + 1 where id <= 6 returning id, qty" % ITEMS))


async def delete_multi(c):
    return await c.execute("delete from %s where id >= 60" % ITEMS)


async def ref_write(c):
    st = await c.execute("insert into %s values ($1, $2)" % REF, 4, "four")
    return [st, rows(await c.fetch("select * from %s order by id" % REF))]


async def cancel(c):
    try:
        await c.execute("select pg_sleep(3)", timeout=0.3)
        return "not cancelled"
    except asyncio.TimeoutError:
        return "timeout-cancelled"


async def pool(_):
    """asyncpg's Pool: RESET ALL (and more) on every release, prepared
    statements cached per connection; 50 tasks over 10 connections, twice."""
    p = await asyncpg.create_pool(DSN, min_size=10, max_size=10, server_settings=SETTINGS)
    try:
        async def task(i):
            async with p.acquire() as c:
                await c.execute("set application_name = 'task'")
                v = await c.fetchval("select $1::int * 2", i)
                w = await c.fetchval("select count(*) from %s where id <= $1" % ITEMS, i % 10)
                return v + w, await c.fetchval("show application_name")
        out = []
        for _ in range(2):
            res = await asyncio.gather(*(task(i) for i in range(50)), return_exceptions=True)
            errs = sorted({getattr(r, "sqlstate", None) or type(r).__name__ for r in res if isinstance(r, BaseException)})
            ok = [r for r in res if not isinstance(r, BaseException)]
            out.append([sum(v for v, _ in ok), sorted({a for _, a in ok}), errs])
        async with p.acquire() as c:
            out.append(await c.fetchval("show application_name"))
        return out
    finally:
        p.terminate()


async def concurrency(_):
    """200 clients at once over a pool of 5 backends per node (logging in
    without SCRAM: 200 exchanges would load the race-instrumented proxy)."""
    async def client(i):
        c = await asyncpg.connect(TRUST_DSN, server_settings={"application_name": "c%d" % (i % 7)})
        try:
            a = await c.fetchval("select $1::int", i)
            b = await attempt_async(c.fetchval("select 1 / $1::int", 0))
            d = await c.fetchval("show application_name")
            return [a, b, d]
        finally:
            await c.close()
    res = await asyncio.gather(*(client(i) for i in range(200)), return_exceptions=True)
    errs = sorted({repr(r) for r in res if isinstance(r, BaseException)})
    ok = [r for r in res if not isinstance(r, BaseException)]
    return [len(ok), sum(r[0] for r in ok), sorted({r[1] for r in ok}), sorted({r[2] for r in ok}), errs[:3]]


CHECKS = [
    ("settings", settings), ("types", types), ("params", params), ("insert", insert), ("executemany", executemany),
    ("prepared", prepared), ("select_all", select_all), ("aggregates", aggregates),
    ("err_syntax", err_syntax), ("after_err_syntax", after), ("err_syntax_ext", err_syntax_ext), ("after_err_syntax_ext", after),
    ("err_unique", err_unique), ("after_err_unique", after), ("err_div", err_div), ("after_err_div", after),
    ("err_simple_div", err_simple_div), ("after_err_simple_div", after),
    ("tx_commit", tx_commit), ("tx_rollback", tx_rollback), ("tx_error", tx_error), ("savepoint", savepoint),
    ("copy_in", copy_in), ("copy_in_text", copy_in_text), ("copy_out", copy_out), ("copy_out_key", copy_out_key),
    ("count", count), ("update_returning", update_returning), ("delete_multi", delete_multi), ("ref_write", ref_write),
    ("select_all_end", select_all), ("cancel", cancel), ("after_cancel", after), ("settings_end", settings),
    ("pool", pool, 30), ("concurrency", concurrency, 60),
]

if __name__ == "__main__":
    asyncio.run(run_async(CHECKS, connect, lambda c: c.terminate()))
    sys.stdout.flush()
