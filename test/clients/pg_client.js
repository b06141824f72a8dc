// The workload through node-postgres (pg): no application_name (SHOW must
// then be empty, as on Postgres), search_path in startup options, named
// prepared statements, COPY via pg-copy-streams, cancel via pg_cancel_backend
// semantics of the driver (a second connection sends the CancelRequest).
'use strict';
const net = require('net');
const { Client } = require('pg');
const { from: copyFrom, to: copyTo } = require('pg-copy-streams');
const { pipeline } = require('stream/promises');
const { Readable, Writable } = require('stream');
const { DSN, ITEMS, REF, TYPES_SQL, attempt, runChecks, itemRows } = require('./clientlib');

const INSERT = `insert into ${ITEMS} (id, name, qty, price, at, ok, tags) values ($1, $2, $3, $4, $5, $6, $7)`;

async function connect() {
  const c = new Client({ connectionString: DSN, options: '-c search_path=public,pg_catalog -c TimeZone=Pacific/Auckland' });
  c.on('error', () => {});
  await c.connect();
  return c;
}

const rows = (r) => [r.fields.map((f) => f.name + ':' + f.dataTypeID), r.rows];
const q = async (c, text, values) => rows(await c.query(text, values));
const simple = (sql) => (c) => q(c, sql);

async function settings(c) {
  const out = [];
  for (const s of ['application_name', 'client_encoding', 'TimeZone', 'search_path']) out.push((await c.query('show ' + s)).rows[0]);
  return out;
}

async function insert(c) {
  const out = [];
  for (const r of itemRows(1, 10)) out.push((await c.query(INSERT, r)).rowCount);
  return out;
}

async function prepared(c) {
  const out = [];
  for (const r of itemRows(11, 30)) out.push((await c.query({ name: 'ins', text: INSERT, values: r })).command);
  for (const k of [3, 4, 7, 999]) {
    out.push(rows(await c.query({ name: 'sel', text: `select id, name, qty from ${ITEMS} where id = $1`, values: [k] })));
  }
  return out;
}

const after = (c) => q(c, 'select $1::int + 1 as x', [1]);

async function txCommit(c) {
  await c.query('begin');
  const a = (await c.query(`update ${ITEMS} set name = 'tx' where id = 2`)).rowCount;
  const b = (await c.query(`update ${ITEMS} set name = 'tx' where id = $1`, [3])).rowCount;
  await c.query('commit');
  return [a, b, await q(c, `select id, name from ${ITEMS} where id in (2, 3) order by id`)];
}

async function txRollback(c) {
  await c.query('begin');
  const a = (await c.query(`delete from ${ITEMS} where id = 4`)).rowCount;
  await c.query('rollback');
  return [a, await q(c, `select count(*) from ${ITEMS}`)];
}

async function txError(c) {
  await c.query('begin');
  const out = [await attempt(c.query('select 1 / $1::int', [0])), await attempt(c.query('select 1'))];
  await c.query('rollback');
  return out.concat([await q(c, 'select 2 as x')]);
}

async function savepoint(c) {
  const out = [];
  await c.query('begin');
  out.push((await c.query(INSERT, itemRows(40, 40)[0])).command);
  await c.query('savepoint a');
  out.push(await attempt(c.query(INSERT, itemRows(1, 1)[0])));
  await c.query('rollback to savepoint a');
  for (const r of itemRows(41, 43)) out.push((await c.query(INSERT, r)).rowCount);
  await c.query('commit');
  return out.concat([await q(c, `select id, name from ${ITEMS} where id >= 40 order by id`)]);
}

async function copyIn(c) {
  const lines = [];
  for (let i = 50; i < 60; i++) lines.push(`${i}\tcopied ${i} é\t${i}\n`);
  const s = c.query(copyFrom(`copy ${ITEMS} (id, name, qty) from stdin`));
  await pipeline(Readable.from(lines), s);
  return s.rowCount;
}

async function copyOut(c, sql) {
  const chunks = [];
  const s = c.query(copyTo(sql));
  await pipeline(s, new Writable({ write(chunk, _, cb) { chunks.push(chunk); cb(); } }));
  return [s.rowCount, Buffer.concat(chunks).toString()];
}

async function updateReturning(c) {
  const r = await c.query(`update ${ITEMS} set qty = qty + 1 where id <= 6 returning id, qty`);
  return r.rows.map((x) => [x.id, x.qty]).sort((a, b) => a[0] - b[0]);
}

// node-postgres has no public cancel call: send the CancelRequest as libpq
// does, from a second socket, with the key the server gave this client.
function sendCancel(c) {
  const sock = net.connect(c.port, c.host, () => {
    const b = Buffer.alloc(16);
    b.writeInt32BE(16, 0);
    b.writeInt32BE(80877102, 4);
    b.writeInt32BE(c.processID, 8);
    b.writeInt32BE(c.secretKey, 12);
    sock.end(b);
  });
  sock.on('error', () => {});
}

async function cancel(c) {
  const p = c.query('select pg_sleep(3)');
  setTimeout(() => sendCancel(c), 300);
  return rows(await p);
}

const CHECKS = [
  ['settings', settings], ['types', simple(TYPES_SQL)],
  ['params', (c) => q(c, 'select $1::int + 1 as a, $2::text || $3::text as b, $4::numeric * 2 as c, $5::timestamptz as d, not $6::bool as e, $7::int as f, $8::int[] as g',
    [41, 'x', 'y', '1.25', new Date(Date.UTC(2024, 4, 6, 7, 8, 9)), true, null, [1, null, 3]])],
  ['insert', insert], ['prepared', prepared], ['select_all', simple(`select * from ${ITEMS} order by id`)],
  ['aggregates', simple(`select count(*), sum(qty), min(price), max(at), bool_and(ok) from ${ITEMS}`)],
  ['err_syntax', simple('selec 1')], ['after_err_syntax', after],
  ['err_syntax_ext', (c) => q(c, 'selec $1::int', [1])], ['after_err_syntax_ext', after],
  ['err_unique', (c) => q(c, INSERT, itemRows(1, 1)[0])], ['after_err_unique', after],
  ['err_div', (c) => q(c, 'select 1 / $1::int', [0])], ['after_err_div', after],
  ['err_simple_div', simple('select 1; select 1/0; select 2')], ['after_err_simple_div', after],
  ['tx_commit', txCommit], ['tx_rollback', txRollback], ['tx_error', txError], ['savepoint', savepoint],
  ['copy_in', copyIn], ['copy_out', (c) => copyOut(c, `copy (select id, name from ${REF} order by id) to stdout`)],
  ['copy_out_key', (c) => copyOut(c, `copy (select * from ${ITEMS} where id = 5) to stdout`)],
  ['count', simple(`select count(*) from ${ITEMS}`)], ['update_returning', updateReturning],
  ['delete_multi', async (c) => (await c.query(`delete from ${ITEMS} where id >= 55`)).rowCount],
  ['ref_write', async (c) => [(await c.query(`insert into ${REF} values ($1, $2)`, [4, 'four'])).rowCount, await q(c, `select * from ${REF} order by id`)]],
  ['select_all_end', simple(`select * from ${ITEMS} order by id`)],
  ['cancel', cancel], ['after_cancel', after], ['settings_end', settings],
];

runChecks(CHECKS, connect, (c, clean) => (c ? (clean ? c.end() : c.connection.stream.destroy()) : undefined));
