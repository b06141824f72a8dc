-- Read queries that must return through pgrouter (3 shards) exactly what one
-- Postgres holding all rows returns. Format: see corpus_test.go.
-- "@ordered" only where ORDER BY is total (ends in a unique key).

-- ---------------------------------------------------------------- plain scans
select * from users;
select id, name from users;
select id, email, score from users where score > 0;
select id, region from users where region is null;
select id, region from users where region = '';
select id, name from users where name = '';
select id, name from users where name is not null and name <> '';
select * from orders;
select user_id, order_id, amount from orders where amount < 0;
select * from events;
select id, kind, val from events where val between -10 and 10;
select id, uid from users where uid is not null;
select id, active from users where active;
select id, active from users where active is not true;
select id, created_at from users where created_at >= '2025-01-10';
select id, last_login from users where last_login < '2026-03-10 00:00:00+00';
select id, balance from users where balance < 0;
select id, age from users where age in (18, 19, 20, 55);
select id from users where email like '%ex3.com';
select upper(name), length(email), age + 1, score * 2, -balance from users;
select id, coalesce(name, 'none'), coalesce(region, '?') from users;
select id, case when score > 0 then 'pos' when score < 0 then 'neg' else 'zero/null' end from users;
select id, created_at::date, extract(hour from created_at) from users;
select id, uid::text, active::int from users where active is not null;
select u.id, p.name from users u join plans p on p.id = u.plan_id;
select id, kind from events where ok is null;
select id, ref from events where ref is not null;
select * from plans;

-- ---------------------------------------------------------------- single shard (keyed)
-- @ordered
select * from users where id = 5;
-- @ordered
select * from users where id = -3;
select * from users where id in (1, 2, 3, 100, 200);
-- @ordered
select * from orders where user_id = 12 order by order_id;
-- @ordered
select u.name, o.order_id, o.amount from users u join orders o on o.user_id = u.id where u.id = 14 order by o.order_id;
-- @ordered
select * from events where id = 1500;
-- @ordered
select count(*) from orders where user_id = 33;
-- @ordered
-- @params 7
select * from users where id = $1;
-- @ordered
-- @params 19
select order_id, amount, status from orders where user_id = $1 order by order_id;
-- @ordered
-- @params 2005
select id, kind, val from events where id = $1;
-- @ordered
-- @params 42
select u.id, count(o.order_id) from users u left join orders o on o.user_id = u.id where u.id = $1 group by u.id;
-- @ordered
select sum(amount), max(qty) from orders where user_id = 24;

-- ---------------------------------------------------------------- co-located joins
select u.id, u.name, o.order_id, o.amount from users u join orders o on o.user_id = u.id;
select u.id, o.order_id, o.status from users u, orders o where o.user_id = u.id and o.status = 'paid';
select u.id, o.order_id from users u left join orders o on o.user_id = u.id;
select u.id, u.region, o.amount from users u join orders o on o.user_id = u.id where o.amount > 100;
select o.user_id, o.order_id from orders o where not exists (select 1 from users u where u.id = o.user_id);
select u.id from users u where exists (select 1 from orders o where o.user_id = u.id and o.qty > 4);
select u.id from users u where u.id in (select o.user_id from orders o where o.status = 'cancelled');
select u.id, o.order_id, p.name from users u join orders o on o.user_id = u.id join plans p on p.id = u.plan_id;
-- @ordered
select u.id, o.order_id, o.amount from users u join orders o on o.user_id = u.id order by o.amount desc nulls last, u.id, o.order_id limit 15;
-- @ordered
select u.region, count(*) from users u join orders o on o.user_id = u.id group by u.region order by u.region nulls first;
-- @ordered
select u.id, count(o.order_id), sum(o.amount) from users u left join orders o on o.user_id = u.id group by u.id order by u.id;
-- @ordered
select u.name, sum(o.qty) from users u join orders o on o.user_id = u.id group by u.name order by 2 desc, 1 nulls last;
-- @ordered
select o.status, count(distinct u.region) from users u join orders o on o.user_id = u.id group by o.status order by o.status;
select u.id, o.order_id from users u join orders o on o.user_id = u.id and o.order_id = 2;
-- @ordered
select p.name, count(*) from users u join plans p on p.id = u.plan_id group by p.name order by p.name;
select u.id, p.price from users u left join plans p on p.id = u.plan_id where p.id is null;

-- ---------------------------------------------------------------- aggregates, no GROUP BY
-- @ordered
select count(*) from users;
-- @ordered
select count(*) from orders;
-- @ordered
select count(*) from events;
-- @ordered
select count(email), count(score), count(region), count(uid) from users;
-- @ordered
select sum(age), sum(balance), sum(score) from users;
-- @ordered
select min(age), max(age), min(score), max(score) from users;
-- @ordered
select min(name), max(name), min(email), max(email) from users;
-- @ordered
select min(created_at), max(created_at), min(last_login), max(last_login) from users;
-- @ordered
select avg(age) from users;
-- @ordered
select avg(score) from users;
-- @ordered
select avg(balance) from users;
-- @ordered
select avg(amount), avg(qty) from orders;
-- @ordered
select bool_and(active), bool_or(active) from users;
-- @ordered
select bool_and(ok), bool_or(ok), every(val > -100) from events;
-- @ordered
select count(*), sum(amount), min(amount), max(amount), avg(amount) from orders where status = 'paid';
-- @ordered
select count(*), sum(age), avg(age), max(name) from users where id > 10000;
-- @ordered
select sum(qty) from orders where qty < 0;
-- @ordered
select count(*) filter_cnt from users where active and region = 'eu';
-- @ordered
select count(distinct region) from users;
-- @ordered
select count(distinct name) from users;
-- @ordered
select count(distinct age), count(*) from users;
-- @ordered
select count(distinct status) from orders;
-- @ordered
select count(distinct kind), count(distinct ref) from events;
-- @ordered
select count(distinct uid) from users;
-- @ordered
select count(distinct score) from users;
-- @ordered
select count(distinct created_at::date) from users;
-- @ordered
select max(val), min(val), sum(val), count(val), avg(val) from events;
-- @ordered
select max(at), min(at) from events where kind = 'buy';
-- @ordered
select sum(score * 2), max(age + 1), min(-balance) from users;
-- @ordered
select count(*) as n, sum(age) as total_age from users;
-- @ordered
select count(1), count(null::int) from users;
-- @ordered
select max(length(name)), min(coalesce(region, 'zz')) from users;

-- ---------------------------------------------------------------- GROUP BY
select region, count(*) from users group by region;
select active, count(*), sum(age) from users group by active;
select status, count(*), sum(amount), avg(amount) from orders group by status;
select kind, ok, count(*) from events group by kind, ok;
select age, count(*) from users group by age;
select name, count(*) from users group by name;
select plan_id, min(score), max(score) from users group by plan_id;
select created_at::date, count(*) from users group by created_at::date;
select date_trunc('hour', at), count(*) from events group by date_trunc('hour', at);
select region, active, count(*), bool_or(active), bool_and(age > 30) from users group by region, active;
select count(*) from users group by region;
select qty, count(*), sum(amount) from orders group by qty;
select user_id, count(*) from orders group by user_id;
select uid, count(*) from users group by uid;
select score, count(*) from users group by score;
select ref, count(*) from events group by ref;
select status, count(distinct user_id) from orders group by status;
select region, count(distinct name), count(*) from users group by region;
select region, avg(score), avg(age), avg(balance) from users group by region;
select kind, avg(val), sum(val), min(at), max(at) from events group by kind;
select (age / 10) * 10 as decade, count(*) from users group by decade;
select 1 + 1, count(*) from users group by 1 + 1;
select region, count(*) from users where active group by region having count(*) > 5;
select status, sum(amount) from orders group by status having sum(amount) > 1000;
select region, avg(age) from users group by region having avg(age) >= 45;
select name, count(*) from users group by name having count(*) >= 2;
select kind, min(val) from events group by kind having min(val) < -60;
select region, count(*) from users group by region having max(age) = 77;
select age, count(*) from users group by age having count(*) > 3 and min(id) > 0;
select status from orders group by status having count(distinct user_id) > 10;
select plan_id, count(*) from users group by plan_id having plan_id > 2;

-- ---------------------------------------------------------------- GROUP BY + ORDER BY / LIMIT
-- @ordered
select region, count(*) from users group by region order by region;
-- @ordered
select region, count(*) from users group by region order by region desc;
-- @ordered
select region, count(*) from users group by region order by region nulls first;
-- @ordered
select region, count(*) from users group by region order by region desc nulls last;
-- @ordered
select region, count(*) from users group by region order by count(*) desc, region nulls first;
-- @ordered
select status, count(*), sum(amount) from orders group by status order by sum(amount) desc;
-- @ordered
select status, avg(amount) from orders group by status order by 2, 1;
-- @ordered
select age, count(*) from users group by age order by age nulls first limit 10;
-- @ordered
select age, count(*) from users group by age order by age desc nulls last limit 5 offset 3;
-- @ordered
select name, count(*) from users group by name order by count(*) desc, name nulls last limit 8;
-- @ordered
select user_id, sum(amount) from orders group by user_id order by sum(amount) desc nulls last, user_id limit 10;
-- @ordered
select user_id, count(*) from orders group by user_id order by user_id offset 100;
-- @ordered
select created_at::date as d, count(*) from users group by d order by d nulls first;
-- @ordered
select kind, count(*) from events group by kind order by max(val) desc nulls first, kind;
-- @ordered
select region, count(*) from users group by region order by min(age), region;
-- @ordered
select plan_id, count(*) from users group by plan_id order by plan_id nulls last;
-- @ordered
select active, region, count(*) from users group by active, region order by active nulls first, region nulls first;
-- @ordered
select count(*) from users group by region order by region nulls first;
-- @ordered
select region, count(*) from users group by region having count(*) > 10 order by count(*), region;
-- @ordered
select status, count(distinct user_id) from orders group by status order by status;
-- @ordered
select age / 10 as decade, avg(score) from users group by age / 10 order by decade nulls first;
-- @ordered
select uid, count(*) from users group by uid order by uid nulls first limit 12;
-- @ordered
select score, count(*) from users group by score order by score desc nulls last limit 7;
-- @ordered
select date_trunc('day', last_login) as day, count(*), min(id) from users group by 1 order by 1 nulls first;
-- @ordered
select kind, ok, count(*) from events group by kind, ok order by kind nulls last, ok nulls first;
-- @ordered
select qty, sum(amount) from orders group by qty order by qty;
-- @ordered
select region, sum(balance) from users group by region order by sum(balance) desc, region nulls first;
-- @ordered
select region, count(*) from users group by region order by region limit 2 offset 1;

-- ---------------------------------------------------------------- ORDER BY (rows)
-- @ordered
select id, name from users order by id;
-- @ordered
select id, name from users order by id desc;
-- @ordered
select id, name from users order by name, id;
-- @ordered
select id, name from users order by name nulls first, id;
-- @ordered
select id, name from users order by name desc, id desc;
-- @ordered
select id, name from users order by name desc nulls last, id;
-- @ordered
select id, score from users order by score, id;
-- @ordered
select id, score from users order by score desc nulls last, id;
-- @ordered
select id, age, region from users order by region nulls first, age desc, id;
-- @ordered
select id, email from users order by email, id;
-- @ordered
select id, created_at from users order by created_at desc nulls last, id;
-- @ordered
select id, last_login from users order by last_login nulls first, id desc;
-- @ordered
select id, uid from users order by uid, id;
-- @ordered
select id, uid from users order by uid desc nulls last, id;
-- @ordered
select id, active from users order by active, id;
-- @ordered
select id, active from users order by active desc nulls last, id;
-- @ordered
select id, balance from users order by balance, id;
-- @ordered
select id from users order by age, id;
-- @ordered
select id, name from users order by region desc, score nulls first, id;
-- @ordered
select id from users order by created_at, id desc;
-- @ordered
select id, age * 2 as a2 from users order by a2 desc nulls last, id;
-- @ordered
select id, age from users order by age + id, id;
-- @ordered
select id, name from users order by length(name) nulls first, name, id;
-- @ordered
select id, name from users order by lower(name), id;
-- @ordered
select id from users order by 1;
-- @ordered
select id, name from users order by 2, 1;
-- @ordered
select *, age from users order by id;
-- @ordered
select * from users order by score desc nulls last, id;
-- @ordered
select user_id, order_id, amount from orders order by amount, user_id, order_id;
-- @ordered
select user_id, order_id, placed_at from orders order by placed_at desc nulls last, user_id, order_id;
-- @ordered
select user_id, order_id, status from orders order by status, user_id desc, order_id;
-- @ordered
select user_id, order_id, note from orders order by note nulls first, user_id, order_id;
-- @ordered
select id, kind, at from events order by at, id;
-- @ordered
select id, kind, val from events order by val desc nulls first, id;
-- @ordered
select id, ref from events order by ref nulls first, id;
-- @ordered
select id, ok from events order by ok nulls last, id desc;
-- @ordered
select id, val from events where kind = 'click' order by val, id;
-- @ordered
select id, name from users where region = 'eu' order by score desc, id;
-- @ordered
select id, name from users order by name collate "C", id;
-- @ordered
select u.id, p.name from users u join plans p on p.id = u.plan_id order by p.name, u.id;

-- ---------------------------------------------------------------- ORDER BY a column not selected
-- @ordered
select name from users order by id;
-- @ordered
select name, email from users order by id desc;
-- @ordered
select email from users order by score desc nulls last, id;
-- @ordered
select id from users order by last_login, id;
-- @ordered
select kind from events order by at desc, id;
-- @ordered
select amount from orders order by placed_at nulls first, user_id, order_id;
-- @ordered
select name from users order by uid nulls first, id;
-- @ordered
select name, region from users order by age nulls first, id limit 20;
-- @ordered
select status from orders order by user_id, order_id limit 30 offset 10;
-- @ordered
select email from users order by balance desc, id limit 5;

-- ---------------------------------------------------------------- LIMIT / OFFSET
-- @ordered
select id, name from users order by id limit 10;
-- @ordered
select id, name from users order by id limit 10 offset 20;
-- @ordered
select id, name from users order by id desc limit 1;
-- @ordered
select id from users order by id offset 230;
-- @ordered
select id from users order by id offset 1000;
-- @ordered
select id from users order by id limit 0;
-- @ordered
select id from users order by id limit all;
-- @ordered
select id, score from users order by score desc nulls last, id limit 10 offset 5;
-- @ordered
select user_id, order_id, amount from orders order by amount desc nulls last, user_id, order_id limit 25;
-- @ordered
select id, at from events order by at, id limit 10;
-- @ordered
select id, at from events order by at desc, id limit 10 offset 100;
-- @ordered
select id from users order by id fetch first 3 rows only;
-- @ordered
select id from users order by id offset 5 rows fetch next 4 rows only;
-- @ordered
select id, name from users where active order by name nulls first, id limit 12 offset 2;
-- @ordered
select id from users where id > 1000 order by id limit 5;
select id from users limit 0;
-- @ordered
select count(*) from users limit 1;

-- ---------------------------------------------------------------- DISTINCT
select distinct region from users;
select distinct name from users;
select distinct active, region from users;
select distinct status from orders;
select distinct kind, ok from events;
select distinct age / 10 from users;
select distinct score from users;
select distinct uid is null from users;
select distinct created_at::date from users;
select distinct ref from events;
-- @ordered
select distinct region from users order by region;
-- @ordered
select distinct region from users order by region desc nulls last;
-- @ordered
select distinct name from users order by name nulls first limit 10;
-- @ordered
select distinct age from users order by age desc nulls last limit 5 offset 2;
-- @ordered
select distinct status, qty from orders order by status, qty;
-- @ordered
select distinct kind from events order by kind nulls first;
-- @ordered
select distinct score from users order by score nulls first limit 10;
-- @ordered
select distinct region, count(*) from users group by region order by region;
select distinct count(*) from users group by region;
select distinct u.region from users u join orders o on o.user_id = u.id;

-- ---------------------------------------------------------------- NULL handling
select id from users where email is null;
select id from users where score is null and age is null;
select id, score from users where not (score > 0);
select id, nullif(region, '') from users;
-- @ordered
select sum(age) from users where age is null;
-- @ordered
select max(name) from users where name is null;
-- @ordered
select avg(score) from users where score is null;
-- @ordered
select bool_and(active) from users where active is null;
-- @ordered
select region, sum(score) from users group by region order by region nulls first;
select region is null, count(*) from users group by region is null;
-- @ordered
select count(distinct region) from users where region is null;
select id from users where name is distinct from 'user05';
select id, ok from events where ok is unknown;

-- ---------------------------------------------------------------- text / numeric / timestamp / uuid
select id, name || '-' || coalesce(region, 'x') from users;
select id from users where name like 'user1%';
select id from users where name ilike 'USER2%';
select id, substring(email from 1 for 3) from users;
select id, score::text, round(score, 1), abs(score), trunc(score) from users;
select id, score + 0.005, score / 3 from users;
select user_id, order_id, amount * qty from orders;
select id, age::numeric / 7 from users;
select id, created_at + interval '1 day', last_login at time zone 'UTC' from users;
select id, to_char(created_at, 'YYYY-MM-DD HH24:MI') from users;
select id, extract(epoch from last_login) from users where last_login is not null;
select id, date_trunc('month', created_at) from users;
select id from users where uid = '00000000-0000-4000-8000-000000000000';
select id, uid from users where uid::text like '%-00%';
select id, md5(name) from users;
-- @ordered
select min(amount), max(amount), sum(amount) from orders;
-- @ordered
select sum(score), avg(score), min(score), max(score) from users where region = 'us';
-- @ordered
select max(placed_at), min(placed_at) from orders;
-- @ordered
select status, min(placed_at), max(placed_at), sum(qty) from orders group by status order by status;
-- @ordered
select id, balance::numeric * 1.5 as b from users order by b, id;
-- @ordered
select id, score from users order by score * -1, id;
-- @ordered
select id, created_at from users order by date_trunc('day', created_at) desc nulls first, id;

-- ---------------------------------------------------------------- subqueries and CTEs (per-row, shard-local)
select id from (select id, age from users) s where s.age > 40;
select s.id from (select id from users where active) s;
with a as (select id, region from users) select id from a where region = 'eu';
with a as (select * from orders) select user_id, order_id from a where qty > 3;
select id from users where age > (select 30);
select id from users where plan_id in (select id from plans where price > 5);
select id from users where plan_id = any (array[1, 3]);
-- @ordered
select count(*) from (select id from users where age > 40) s;
-- @ordered
select max(n) from (select id, age + 1 as n from users) s;
-- @ordered
select id, name from (select * from users) s order by id limit 5;

-- ---------------------------------------------------------------- prepared statements with parameters
-- @params 40
select id, name from users where age > $1;
-- @params eu
select id from users where region = $1;
-- @ordered
-- @params 40
select count(*), sum(score) from users where age > $1;
-- @ordered
-- @params paid
select count(*), avg(amount) from orders where status = $1;
-- @ordered
-- @params 10|20
select id, age from users where age between $1::int and $2::int order by age, id;
-- @ordered
-- @params us
select region, count(*) from users where region <> $1 group by region order by region nulls first;
-- @ordered
-- @params 0
select id, score from users where score > $1 order by score desc, id limit 10;
-- @params user1%
select id, name from users where name like $1;
-- @ordered
-- @params 2026-03-05 00:00:00+00
select count(*) from users where last_login > $1::timestamptz;
-- @ordered
-- @params 2025-01-05
select id, created_at from users where created_at < $1 order by created_at, id;
-- @params true
select id from users where active = $1;
-- @ordered
-- @params 5
select user_id, count(*) from orders where qty >= $1 group by user_id order by user_id;
-- @ordered
-- @params click|buy
select kind, count(*), sum(val) from events where kind in ($1, $2) group by kind order by kind;
-- @ordered
-- @params 1|200
select count(distinct region) from users where id between $1 and $2;
-- @ordered
-- @params 100
select u.id, sum(o.amount) from users u join orders o on o.user_id = u.id where o.amount > $1 group by u.id order by u.id;
-- @params NULL
select id from users where region = $1;
-- @ordered
-- @params NULL
select count(*) from users where $1::int is null;
-- @ordered
-- @params {1,2,3,50,-4}
select id, name from users where id = any ($1::bigint[]) order by id;
-- @ordered
-- @params -50
select distinct status from orders where amount > $1 order by status;
-- @ordered
-- @params 2026-05-01 12:00:00
select id, at from events where at > $1 order by at, id limit 10;

-- ---------------------------------------------------------------- edge cases of the merge
-- @ordered
select count(*) from users where false;
-- @ordered
select sum(age), min(name), avg(score), bool_and(active), count(distinct region) from users where false;
select region, count(*) from users where false group by region;
-- @ordered
select count(*), sum(age) from users where id in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10);
-- @ordered
select id, -age as age from users order by age, id;
-- @ordered
select id as x, id from users order by x desc;
-- @ordered
select id, id from users order by 2 limit 7;
-- @ordered
select * from users order by 1 limit 9;
-- @ordered
select u.* from users u order by u.score nulls first, u.id;
-- @ordered
select id, name as n from users order by n desc nulls last, id;
-- @ordered
select id as "Order" from users order by "Order" limit 4;
-- @ordered
select age + 1 from users order by age+1, 1 limit 50;
-- @ordered
select region, count(*) as n from users group by region order by n desc, region nulls first;
-- @ordered
select distinct count(*) from users group by region order by 1 limit 2;
-- @ordered
select count(*) from users group by region having region > 'a' order by 1;
-- @ordered
select region, count(*) from users group by region having region <> '' order by region;
-- @ordered
select status, sum(amount) from orders group by status having sum(amount) > 1000.5 order by status;
-- @ordered
select region, avg(score) from users group by region having avg(score) > -0.5 order by region nulls first;
-- @ordered
select region, min(name) from users group by region having min(name) = 'user00' order by region;
-- @ordered
select region, max(created_at) from users group by region having max(created_at) > '2025-01-10' order by region nulls first;
-- @ordered
select region, max(last_login) from users group by region having max(last_login) >= '2026-03-20 00:00:00+00' order by region nulls first;
-- @ordered
select active, count(*) from users group by active having bool_and(active) = true order by active;
-- @ordered
select kind, count(*) from events group by kind having count(*) >= 100 and count(*) <= 200 order by kind nulls first;
-- @ordered
select region, count(distinct name), sum(age), avg(age), count(*) from users group by region order by region nulls first;
-- @ordered
select count(distinct name), count(distinct region), count(*), sum(age) from users;
-- @ordered
select sum(age::smallint), avg(age::smallint), sum(age::float8), max(age::float8) from users;
-- @ordered
select min(created_at::date), max(created_at::date) from users;
-- @ordered
select created_at::date as d, count(*) from users group by 1 order by 1 desc nulls last limit 4;
-- @ordered
select sum(balance), avg(balance), min(balance), max(balance) from users where balance > 0;
-- @ordered
select score, count(*) from users group by score having score > 0 order by score limit 5;
-- @ordered
select user_id, order_id from orders order by amount desc nulls first, qty, user_id, order_id limit 12 offset 3;
-- @ordered
select distinct on_time from (select placed_at < '2026-01-05' as on_time from orders) s order by 1;
-- @ordered
select id, name from users where name >= 'user4' order by name collate "C" desc, id limit 6;
-- @ordered
select uid, count(*) from users group by uid having uid = 'F519F70A-002A-402A-8126-0000000006E4' order by uid;
-- @ordered
select uid, count(*) from users group by uid having uid <> '{f519f70a002a402a81260000000006e4}' order by uid nulls first limit 3;
-- @ordered
select region, min(name), max(name) from users group by region having max(name) >= 'user5' and min(name) < 'user0' order by region nulls first;
-- @ordered
select id, uid from users where uid > '80000000-0000-0000-0000-000000000000' order by uid, id;
-- @ordered
-- @params 3
select region, count(*) from users where age > $1 group by region having count(*) > 3 order by region nulls first;
-- @ordered
select sum(amount), avg(amount), sum(qty) from orders where user_id in (5, 6, 7, 8, 9, 10, 11, 12);
-- @ordered
select region, count(*) from users group by region having count(*) > ' 40 ' order by region nulls first;
-- @ordered
select region, count(*) from users group by region having count(*) > 40.5 order by region nulls first;
-- @ordered
select region, avg(age) from users group by region having avg(age) < '50' order by region nulls first;

-- ---------------------------------------------------------------- floats and pass-through types
-- @ordered
select id, age::float8 / 7 as f from users order by f nulls first, id;
-- @ordered
select id, case when age is null then 'NaN'::float8 else age::float8 end as f from users order by f desc, id;
-- @ordered
select id, score::float4 as r from users order by r desc nulls last, id limit 30;
-- @ordered
select min(age::float8 / 3), max(age::float8 / 3), sum(age::float8), count(distinct age::float8 / 3) from users;
-- @ordered
select region, max(age::float8 / 7) from users group by region having max(age::float8 / 7) > 10.5 order by region nulls first;
select id, created_at - '2025-01-01' from users;
select id, to_json(name), jsonb_build_object('a', age) from users;
select id, array[age, plan_id] from users;
select id, decode(md5(coalesce(name, '')), 'hex') from users;
-- @ordered
select id, to_json(name) from users order by id limit 20;
-- @ordered
select count(distinct last_login), count(distinct created_at), count(distinct active) from users;
-- @ordered
select sum(balance::numeric * 1000000000000), avg(balance::numeric * 1000000000000) from users;
-- @ordered
select sum(score * 1.0001), avg(score / 3) from users;
-- @ordered
select name::char(10) as c, id from users order by c, id;
-- @ordered
select distinct name::char(12) as c from users order by c nulls first;
-- @ordered
select count(*) from users limit 0;
-- @ordered
select count(*) from users group by region order by upper(region) nulls first, count(*);
-- @ordered
select region, count(distinct name), count(name), min(name) from users group by region order by region nulls first;
