"""Shared runner of the driver workloads (see main_test.go).

Each check is a function of the connection returning a printable result;
the runner prints "name: result" per check, "ERROR <SQLSTATE>" when it
raised, and "TIMEOUT" when it did not finish in CHECK_TIMEOUT seconds (then
the rest of the workload gets a fresh connection, so one hang does not hide
the other checks). A check that is not about an error (its name does not
start with "err_" or "cancel") and fails anyway also gets its successor a
fresh connection, so that a transaction it left open cannot make every later
check fail too. Error messages go to stderr, for the report only.
"""
import asyncio
import os
import queue
import sys
import threading

CHECK_TIMEOUT = 4.0

DSN = sys.argv[1]
SUFFIX = sys.argv[2]
# TRUST_DSN logs in without SCRAM (see target in matrix_test.go): for the
# checks that open hundreds of connections at once.
TRUST_DSN = sys.argv[3] if len(sys.argv) > 3 else DSN
ITEMS = "items_" + SUFFIX
REF = "ref_" + SUFFIX


def expects_error(name):
    return name.startswith("err_") or name.startswith("cancel")


def emit(name, result):
    print("%s: %s" % (name, str(result).replace("\n", "\\n")), flush=True)


def sqlstate(e):
    """The SQLSTATE of a driver exception, whatever the driver."""
    for cand in (e, getattr(e, "orig", None), getattr(e, "__cause__", None)):
        if cand is None:
            continue
        for attr in ("sqlstate", "pgcode"):
            v = getattr(cand, attr, None)
            if isinstance(v, str) and v:
                return v
        diag = getattr(cand, "diag", None)
        if diag is not None and getattr(diag, "sqlstate", None):
            return diag.sqlstate
    return type(e).__name__


def error_result(e):
    print("%s: %s" % (type(e).__name__, str(e).strip().splitlines()[0] if str(e).strip() else ""), file=sys.stderr, flush=True)
    return "ERROR " + sqlstate(e)


def attempt(fn, *args):
    """fn(*args), or the error line: for steps expected to fail mid-check."""
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001 - any driver error is a result
        return error_result(e)


async def attempt_async(aw):
    try:
        return await aw
    except Exception as e:  # noqa: BLE001
        return error_result(e)


def run_sync(checks, connect):
    """Runs blocking checks, each in a thread bounded by CHECK_TIMEOUT."""
    state = {"conn": None}

    def fresh():
        try:
            state["conn"] = connect()
        except Exception as e:  # noqa: BLE001
            print("reconnect failed: %s" % e, file=sys.stderr, flush=True)
            state["conn"] = None

    bounded(fresh)
    for name, fn, *limit in checks:
        print("# %s" % name, file=sys.stderr, flush=True)
        ok, val = bounded(lambda: fn(state["conn"]), *limit)
        if ok is None:
            emit(name, "TIMEOUT")
            bounded(fresh)  # the stuck connection is left to its thread
        else:
            emit(name, val if ok else error_result(val))
            if not ok and not expects_error(name):
                old = state["conn"]
                bounded(fresh)
                bounded(lambda: old.close())
    sys.stdout.flush()
    os._exit(0)  # threads stuck in a hang must not keep the process alive


def bounded(fn, limit=CHECK_TIMEOUT):
    out = queue.Queue()

    def work():
        try:
            out.put((True, fn()))
        except BaseException as e:  # noqa: BLE001
            out.put((False, e))

    threading.Thread(target=work, daemon=True).start()
    try:
        return out.get(timeout=limit)
    except queue.Empty:
        return None, None


async def run_async(checks, connect, close):
    conn = await connect()
    for name, fn, *limit in checks:
        print("# %s" % name, file=sys.stderr, flush=True)
        try:
            emit(name, await asyncio.wait_for(fn(conn), limit[0] if limit else CHECK_TIMEOUT))
        except asyncio.TimeoutError:
            emit(name, "TIMEOUT")
            close(conn)
            try:
                conn = await asyncio.wait_for(connect(), CHECK_TIMEOUT)
            except Exception as e:  # noqa: BLE001
                print("reconnect failed: %r" % e, file=sys.stderr, flush=True)
        except Exception as e:  # noqa: BLE001
            emit(name, error_result(e))
            if not expects_error(name):
                close(conn)
                try:
                    conn = await asyncio.wait_for(connect(), CHECK_TIMEOUT)
                except Exception as e2:  # noqa: BLE001
                    print("reconnect failed: %r" % e2, file=sys.stderr, flush=True)


def item_rows(first, last):
    """Rows of the items table: (id, name, qty, price, at, ok, tags); every
    type the workloads read back, NULLs included."""
    import datetime
    import decimal
    rows = []
    for i in range(first, last + 1):
        rows.append((
            i,
            None if i % 7 == 0 else "item %d é" % i,
            i * 3 - 10,
            decimal.Decimal("%d.%02d" % (i, i % 100)),
            datetime.datetime(2024, 1 + i % 12, 1 + i % 28, i % 24, 30, 15, i * 1000, tzinfo=datetime.timezone.utc),
            None if i % 5 == 0 else i % 2 == 0,
            ["t%d" % i, None] if i % 3 == 0 else ["t%d" % i],
        ))
    return rows


TYPES_SQL = ("select 42::int as i, 'héllo'::text as t, 12.50::numeric(10,2) as n, "
             "'2024-02-03 04:05:06.789+00'::timestamptz as ts, true as b, null::int as z, "
             "array[1,2,3]::int[] as a, 9007199254740993::bigint as big, 1.5::float8 as f")
