"""Batches and savepoints of mainstream Python drivers through pgrouter.

argv: DSN, then a JSON object {case: [keys…]}. Each case writes rows with
its keys (they span both shards) the way applications do; the script
prints one JSON object {case: "ok" | "ERROR <sqlstate>"} and the Go test
checks the rows on each shard.
"""
import asyncio
import json
import sys

import asyncpg
import psycopg
import psycopg2
import psycopg2.extras

DSN, CASES = sys.argv[1], json.loads(sys.argv[2])
INSERT3 = "insert into users (user_id, name) values (%s, %s)"
out = {}


def run(name, fn):
    try:
        fn(CASES[name])
        out[name] = "ok"
    except (psycopg.Error, psycopg2.Error) as e:
        out[name] = "ERROR " + str(getattr(e, "sqlstate", None) or getattr(e, "pgcode", None))
        out[name + " message"] = str(e)


def pg3_executemany_autocommit(keys):
    with psycopg.connect(DSN, autocommit=True) as c:
        c.cursor().executemany(INSERT3, [(k, "pg3") for k in keys])


def pg3_executemany_tx(keys):
    with psycopg.connect(DSN) as c:  # psycopg 3 opens a transaction; the with block commits
        c.cursor().executemany(INSERT3, [(k, "pg3tx") for k in keys])


def pg3_pipeline(keys):
    with psycopg.connect(DSN, autocommit=True) as c:
        with c.pipeline():
            cur = c.cursor()
            for k in keys:
                cur.execute(INSERT3, (k, "pipe"))
            sel = c.cursor()  # a cross-shard read in the same pipeline
            sel.execute("select count(*) from users where user_id = any(%s)", (keys,))
        if sel.fetchone()[0] != len(keys):
            raise psycopg.DataError("pipeline read does not see its writes")


def pg3_savepoints(keys):
    with psycopg.connect(DSN) as c:
        c.execute(INSERT3, (keys[0], "outer"))
        try:
            with c.transaction():  # SAVEPOINT; a failure rolls back to it
                c.execute(INSERT3, (keys[1], "inner"))
                c.execute(INSERT3, (keys[0], "duplicate"))
        except psycopg.errors.UniqueViolation:
            pass
        c.execute(INSERT3, (keys[2], "after"))


def pg3_executemany_returning(keys):
    with psycopg.connect(DSN, autocommit=True) as c:
        cur = c.cursor()
        cur.executemany(INSERT3 + " returning user_id", [(k, "ret") for k in keys], returning=True)
        got = []
        while True:
            got.append(cur.fetchone()[0])
            if not cur.nextset():
                break
        if got != keys:  # one result per statement, in the order sent
            raise psycopg.DataError("executemany returning %r, want %r" % (got, keys))


def pg3_prepared_executemany(keys):
    with psycopg.connect(DSN, autocommit=True, prepare_threshold=0) as c:
        c.cursor().executemany(INSERT3, [(k, "prep") for k in keys])


def pg2_execute_batch(keys):
    c = psycopg2.connect(DSN)
    c.autocommit = True
    psycopg2.extras.execute_batch(c.cursor(), INSERT3, [(k, "pg2") for k in keys])
    c.close()


def pg2_execute_batch_tx(keys):
    c = psycopg2.connect(DSN)
    psycopg2.extras.execute_batch(c.cursor(), INSERT3, [(k, "pg2tx") for k in keys], page_size=2)
    c.commit()
    c.close()


def pg2_execute_batch_dup(keys):
    c = psycopg2.connect(DSN)
    c.autocommit = True
    psycopg2.extras.execute_batch(c.cursor(), INSERT3, [(k, "dup") for k in keys])
    c.close()


async def apg(name, keys):
    c = await asyncpg.connect(DSN)
    try:
        if name == "asyncpg_executemany":
            await c.executemany("insert into users (user_id, name) values ($1, $2)", [(k, "apg") for k in keys])
        elif name == "asyncpg_savepoints":
            async with c.transaction():
                await c.execute("insert into users (user_id, name) values ($1, 'outer')", keys[0])
                try:
                    async with c.transaction():  # SAVEPOINT
                        await c.execute("insert into users (user_id, name) values ($1, 'inner')", keys[1])
                        raise RuntimeError("roll back to the savepoint")
                except RuntimeError:
                    pass
                await c.execute("insert into users (user_id, name) values ($1, 'after')", keys[2])
    finally:
        await c.close()


for name in ["pg3_executemany_autocommit", "pg3_executemany_tx", "pg3_executemany_returning", "pg3_pipeline", "pg3_savepoints",
             "pg3_prepared_executemany", "pg2_execute_batch", "pg2_execute_batch_tx", "pg2_execute_batch_dup"]:
    run(name, globals()[name])
for name in ["asyncpg_executemany", "asyncpg_savepoints"]:
    try:
        asyncio.run(apg(name, CASES[name]))
        out[name] = "ok"
    except asyncpg.PostgresError as e:
        out[name] = "ERROR " + e.sqlstate
print(json.dumps(out, sort_keys=True))
