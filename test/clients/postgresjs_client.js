// The workload through postgres.js: every query a named prepared statement
// (queries without parameters send Describe(Statement)), startup parameters
// for application_name/TimeZone/search_path, multi-row inserts from arrays,
// begin/savepoint callbacks, COPY streams, query.cancel().
'use strict';
const postgres = require('postgres');
const { pipeline } = require('stream/promises');
const { Readable, Writable } = require('stream');
const { DSN, ITEMS, REF, TYPES_SQL, attempt, runChecks, itemRows } = require('./clientlib');

const COLS = ['id', 'name', 'qty', 'price', 'at', 'ok', 'tags'];
const asObjects = (rs) => rs.map((r) => Object.fromEntries(COLS.map((c, i) => [c, r[i]])));

async function connect() {
  const sql = postgres(DSN, {
    max: 1, onnotice: () => {}, idle_timeout: 0, connect_timeout: 4,
    connection: { application_name: 'drv-postgresjs', TimeZone: 'Europe/Paris', search_path: 'public' },
  });
  await sql`select 1`;
  return sql;
}

const rows = (r) => [r.command, r.count, (r.columns || []).map((c) => c.name + ':' + c.type), Array.from(r)];
const unsafe = (text, params) => async (sql) => rows(await sql.unsafe(text, params));

async function settings(sql) {
  const out = [];
  for (const s of ['application_name', 'client_encoding', 'TimeZone', 'search_path']) out.push(Array.from(await sql.unsafe('show ' + s)));
  return out;
}

async function insert(sql) {
  const out = [];
  for (const r of asObjects(itemRows(1, 10))) out.push((await sql`insert into ${sql(ITEMS)} ${sql(r, COLS)}`).count);
  return out;
}

// A multi-row INSERT built from an array: split per shard by pgrouter.
async function insertMany(sql) {
  return rows(await sql`insert into ${sql(ITEMS)} ${sql(asObjects(itemRows(11, 30)), COLS)} returning id`);
}

async function prepared(sql) {
  const out = [];
  for (const k of [3, 4, 7, 999]) out.push(rows(await sql`select id, name, qty from ${sql(ITEMS)} where id = ${k}`));
  return out;
}

const after = async (sql) => rows(await sql`select ${1}::int + 1 as x`);

async function txCommit(sql) {
  const r = await sql.begin(async (tx) => [
    (await tx`update ${sql(ITEMS)} set name = 'tx' where id = 2`).count,
    (await tx`update ${sql(ITEMS)} set name = 'tx' where id = ${3}`).count,
  ]);
  return r.concat([rows(await sql`select id, name from ${sql(ITEMS)} where id in (2, 3) order by id`)]);
}

async function txRollback(sql) {
  const out = [];
  await attempt(sql.begin(async (tx) => {
    out.push((await tx`delete from ${sql(ITEMS)} where id = 4`).count);
    throw new Error('roll back');
  }));
  return out.concat([rows(await sql`select count(*) from ${sql(ITEMS)}`)]);
}

async function txError(sql) {
  const out = [];
  out.push(await attempt(sql.begin(async (tx) => {
    out.push(await attempt(tx`select 1 / ${0}::int`));
    return tx`select 1`;
  })));
  return out.concat([rows(await sql`select 2 as x`)]);
}

async function savepoint(sql) {
  const out = await sql.begin(async (tx) => {
    const o = [(await tx`insert into ${sql(ITEMS)} ${sql(asObjects(itemRows(40, 40)), COLS)}`).count];
    o.push(await attempt(tx.savepoint((sp) => sp`insert into ${sql(ITEMS)} ${sql(asObjects(itemRows(1, 1)), COLS)}`)));
    for (const r of asObjects(itemRows(41, 43))) o.push((await tx`insert into ${sql(ITEMS)} ${sql(r, COLS)}`).count);
    return o;
  });
  return out.concat([rows(await sql`select id, name from ${sql(ITEMS)} where id >= 40 order by id`)]);
}

async function copyIn(sql) {
  const lines = [];
  for (let i = 50; i < 60; i++) lines.push(`${i}\tcopied ${i} é\t${i}\n`);
  await pipeline(Readable.from(lines), await sql.unsafe(`copy ${ITEMS} (id, name, qty) from stdin`).writable());
  return rows(await sql`select count(*) from ${sql(ITEMS)} where id >= 50`);
}

async function copyOut(sql, text) {
  const chunks = [];
  await pipeline(await sql.unsafe(text).readable(), new Writable({ write(c, _, cb) { chunks.push(c); cb(); } }));
  return Buffer.concat(chunks).toString();
}

async function updateReturning(sql) {
  const r = await sql`update ${sql(ITEMS)} set qty = qty + 1 where id <= 6 returning id, qty`;
  return Array.from(r).map((x) => [x.id, x.qty]).sort((a, b) => a[0] - b[0]);
}

async function cancel(sql) {
  const q = sql`select pg_sleep(3)`;
  setTimeout(() => q.cancel(), 300);
  return rows(await q);
}

const CHECKS = [
  ['settings', settings], ['types', unsafe(TYPES_SQL)], ['types_prepared', unsafe(TYPES_SQL, [])],
  ['params', async (sql) => rows(await sql`select ${41}::int + 1 as a, ${'x'}::text || ${'y'}::text as b, ${'1.25'}::numeric * 2 as c,
    ${new Date(Date.UTC(2024, 4, 6, 7, 8, 9))}::timestamptz as d, not ${true}::bool as e, ${null}::int as f`)],
  ['insert', insert], ['insert_many', insertMany], ['prepared', prepared],
  ['select_all', async (sql) => rows(await sql`select * from ${sql(ITEMS)} order by id`)],
  ['aggregates', async (sql) => rows(await sql`select count(*), sum(qty), min(price), max(at), bool_and(ok) from ${sql(ITEMS)}`)],
  ['err_syntax', unsafe('selec 1', [])], ['after_err_syntax', after],
  ['err_syntax_simple', unsafe('selec 1')], ['after_err_syntax_simple', after],
  ['err_unique', async (sql) => rows(await sql`insert into ${sql(ITEMS)} ${sql(asObjects(itemRows(1, 1)), COLS)}`)], ['after_err_unique', after],
  ['err_div', async (sql) => rows(await sql`select 1 / ${0}::int`)], ['after_err_div', after],
  ['err_simple_div', unsafe('select 1; select 1/0; select 2')], ['after_err_simple_div', after],
  ['tx_commit', txCommit], ['tx_rollback', txRollback], ['tx_error', txError], ['savepoint', savepoint],
  ['copy_in', copyIn], ['copy_out', (sql) => copyOut(sql, `copy (select id, name from ${REF} order by id) to stdout`)],
  ['copy_out_key', (sql) => copyOut(sql, `copy (select * from ${ITEMS} where id = 5) to stdout`)],
  ['update_returning', updateReturning],
  ['delete_multi', async (sql) => (await sql`delete from ${sql(ITEMS)} where id >= 55`).count],
  ['ref_write', async (sql) => [(await sql`insert into ${sql(REF)} values (${4}, ${'four'})`).count, rows(await sql`select * from ${sql(REF)} order by id`)]],
  ['select_all_end', async (sql) => rows(await sql`select * from ${sql(ITEMS)} order by id`)],
  ['cancel', cancel], ['after_cancel', after], ['settings_end', settings],
];

runChecks(CHECKS, connect, (sql, clean) => (sql ? sql.end({ timeout: clean ? 1 : 0 }) : undefined));
