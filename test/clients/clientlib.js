// Shared runner of the node workloads (see main_test.go and clientlib.py):
// prints "name: result" per check, "ERROR <SQLSTATE>" when it threw,
// "TIMEOUT" when it did not settle in CHECK_TIMEOUT ms (the rest then gets a
// fresh connection). A check not about an error (its name does not start
// with "err_" or "cancel") that throws anyway also gets its successor a
// fresh connection, so an open transaction it left cannot fail every later
// check. Error messages go to stderr, for the report only.
'use strict';

const CHECK_TIMEOUT = 4000;
const [DSN, SUFFIX] = process.argv.slice(2);
const ITEMS = 'items_' + SUFFIX;
const REF = 'ref_' + SUFFIX;

// canon renders driver values deterministically: dates as ISO strings,
// bigints and Buffers tagged, object keys in driver order.
function canon(v) {
  return JSON.stringify(v, (k, x) => {
    if (typeof x === 'bigint') return 'bigint:' + x;
    if (x && x.type === 'Buffer' && Array.isArray(x.data)) return 'buffer:' + Buffer.from(x.data).toString('hex');
    return x;
  });
}

function errorResult(e) {
  console.error((e && e.constructor && e.constructor.name) + ': ' + (e && e.message));
  return 'ERROR ' + ((e && e.code) || (e && e.constructor && e.constructor.name));
}

async function attempt(p) {
  try { return await p; } catch (e) { return errorResult(e); }
}

function timeout(ms) {
  return new Promise((resolve) => { const t = setTimeout(() => resolve(TIMEOUT), ms); t.unref(); });
}
const TIMEOUT = Symbol('timeout');

async function runChecks(checks, connect, destroy) {
  let conn = await connect();
  for (const [name, fn, limit] of checks) {
    console.error('# ' + name);
    let result;
    try {
      const r = await Promise.race([fn(conn), timeout(limit || CHECK_TIMEOUT)]);
      result = r === TIMEOUT ? 'TIMEOUT' : canon(r);
      if (r === TIMEOUT) {
        destroy(conn);
        conn = await Promise.race([connect(), timeout(CHECK_TIMEOUT)]).catch((e) => { console.error('reconnect: ' + e); });
      }
    } catch (e) {
      result = errorResult(e);
      if (!/^(err_|cancel)/.test(name)) {
        destroy(conn);
        conn = await Promise.race([connect(), timeout(CHECK_TIMEOUT)]).catch((e2) => { console.error('reconnect: ' + e2); });
      }
    }
    console.log(name + ': ' + String(result).replace(/\n/g, '\\n'));
  }
  await Promise.race([destroy(conn, true), timeout(1000)]);
  process.exit(0);
}

// itemRows mirrors clientlib.py's item_rows.
function itemRows(first, last) {
  const rows = [];
  for (let i = first; i <= last; i++) {
    const at = new Date(Date.UTC(2024, i % 12, 1 + (i % 28), i % 24, 30, 15, i));
    rows.push([i, i % 7 === 0 ? null : 'item ' + i + ' é', i * 3 - 10, i + '.' + String(i % 100).padStart(2, '0'), at,
      i % 5 === 0 ? null : i % 2 === 0, i % 3 === 0 ? ['t' + i, null] : ['t' + i]]);
  }
  return rows;
}

const TYPES_SQL = "select 42::int as i, 'héllo'::text as t, 12.50::numeric(10,2) as n, " +
  "'2024-02-03 04:05:06.789+00'::timestamptz as ts, true as b, null::int as z, " +
  'array[1,2,3]::int[] as a, 9007199254740993::bigint as big, 1.5::float8 as f';

module.exports = { DSN, SUFFIX, ITEMS, REF, TYPES_SQL, attempt, runChecks, itemRows, canon };
