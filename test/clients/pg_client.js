// Drives pgrouter with node-postgres; prints "ok <n>" per check, exits 1 on failure.
const { Client } = require('pg');

async function main() {
  const c = new Client({ connectionString: process.argv[2] });
  await c.connect();
  const check = (cond, what) => { if (!cond) { throw new Error('check failed: ' + what); } console.log('ok ' + what); };
  let r = await c.query('select 40 + 2 as v');
  check(r.rows[0].v === 42, 'simple query');
  r = await c.query('select $1::int * 2 as v, $2::text as t', [21, 'x']);
  check(r.rows[0].v === 42 && r.rows[0].t === 'x', 'parameters');
  await c.query('create table if not exists node_t (id int primary key, v text)');
  await c.query('truncate node_t');
  for (let i = 0; i < 20; i++) {
    // Named prepared statement: prepared once, executed on whatever backend the pool hands out.
    await c.query({ name: 'ins', text: 'insert into node_t values ($1, $2)', values: [i, 'v' + i] });
  }
  r = await c.query({ name: 'cnt', text: 'select count(*)::int as n from node_t' });
  check(r.rows[0].n === 20, 'named prepared statements');
  await c.query('begin');
  await c.query('update node_t set v = $1 where id = $2', ['tx', 1]);
  await c.query('rollback');
  r = await c.query('select v from node_t where id = 1');
  check(r.rows[0].v === 'v1', 'rollback');
  try { await c.query('select 1/0'); check(false, 'error'); } catch (e) { check(e.code === '22012', 'error code'); }
  r = await c.query('select 1 as one');
  check(r.rows[0].one === 1, 'usable after error');
  await c.end();
}
main().catch((e) => { console.error(e); process.exit(1); });
