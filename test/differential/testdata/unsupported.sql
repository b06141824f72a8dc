-- Cross-shard queries pgrouter refuses with SQLSTATE 0A000. Each is valid
-- on one Postgres; "@error" is text the error message must contain, and
-- docs/CROSS_SHARD.md must name it. Format: see corpus_test.go.

-- joins of tables that are not co-located, or not joined on the shard key
-- @error not joined on their shard key
select u.id, e.kind from users u join events e on e.id = u.id;
-- @error not joined on their shard key
select u.id, o.order_id from users u join orders o on o.order_id = u.id;
-- @error not joined on their shard key
select count(*) from users u, events e where e.val = u.age;
-- correlated subquery across shards
-- @error not joined on their shard key
select u.id from users u where exists (select 1 from events e where e.val = u.age);
-- @error not joined on their shard key
select u.id from users u where u.age in (select val from events);

-- window functions
-- @error window function rank()
select id, rank() over (order by age) from users;
-- @error window function row_number()
select id, row_number() over (partition by region order by id) from users;
-- @error window function sum()
select id, sum(age) over () from users;
-- @error window function
select id, count(*) over w from users window w as (order by id);

-- set operations: each branch is its own group of sharded tables, so the
-- router refuses them before the merge engine sees them
-- @error not joined on their shard key
select id from users union select user_id from orders;
-- @error not joined on their shard key
select id from users union all select id from events;
-- @error not joined on their shard key
select id from users intersect select user_id from orders;
-- @error not joined on their shard key
select id from users except select user_id from orders;
-- @error UNION
select region from users union select name from plans;
-- @error INTERSECT
select region from users intersect select name from plans;
-- @error EXCEPT
select region from users except select name from plans;

-- rows that depend on other shards' rows
-- @error DISTINCT ON
select distinct on (region) region, id from users order by region, id;
-- @error subquery in the select list
select id, (select count(*) from orders o where o.user_id = users.id) from users;
-- @error subquery or WITH query with GROUP BY
select s.region, s.n from (select region, count(*) as n from users group by region) s;
-- @error subquery or WITH query with LIMIT/OFFSET
select id from (select id from users order by id limit 5) s;
-- @error subquery or WITH query with DISTINCT
with r as (select distinct region from users) select * from r;
-- @error not joined on their shard key
select * from users where age > (select avg(age) from users);
-- @error subquery or WITH query with aggregate or window function
select * from users where age > (select max(price) from plans) + (select count(*) from orders o where o.user_id = users.id);
-- @error WITH RECURSIVE
with recursive r(n) as (select 1 union all select n + 1 from r where n < 3) select u.id from users u, r;

-- aggregates the merge cannot combine
-- @error aggregate function string_agg()
select string_agg(name, ',') from users;
-- @error aggregate function array_agg()
select array_agg(id) from users;
-- @error aggregate function stddev()
select stddev(age) from users;
-- @error sum(DISTINCT …)
select sum(distinct age) from users;
-- @error avg(DISTINCT …)
select avg(distinct age) from users;
-- @error aggregate with FILTER (count)
select count(*) filter (where active) from users;
-- @error aggregate with ORDER BY (max)
select max(name order by id) from users;
-- @error aggregate function percentile_cont()
select percentile_cont(0.5) within group (order by age) from users;
-- @error expression over aggregate results in the select list
select sum(age) / count(*) from users;
-- @error expression over aggregate results in the select list
select count(*) - count(email) from users;
-- @error this HAVING condition
select region from users group by region having bool_or(active);
-- @error this HAVING condition
select region, count(*) from users group by region having count(*) > 1 or min(age) < 20;
-- @error expression over aggregate results in ORDER BY or HAVING
select region from users group by region order by count(*) + 1;
-- @error GROUPING SETS, ROLLUP or CUBE
select region, count(*) from users group by rollup (region);
-- @error SELECT * with aggregates or GROUP BY
select * from plans p join users u on u.plan_id = p.id group by p.id, u.id;
-- @error avg() of real
select avg(age::real) from users;

-- clauses the merge needs as constants, or cannot reproduce
-- @error LIMIT that is not an integer literal
select id from users order by id limit 2 + 3;
-- @error FETCH … WITH TIES
select id from users order by age fetch first 3 rows with ties;
-- @error FOR UPDATE/SHARE
select id from users for update;
-- @error ORDER BY … USING
select id from users order by id using >;

-- comparing values of types the merge cannot order
-- @error interval
select id, created_at - timestamp '2025-01-01' as d from users order by d, id;
-- @error interval
select max(created_at - timestamp '2025-01-01') from users;

-- cursors, EXPLAIN, and cross-shard reads inside an explicit transaction
-- @error does not restrict shard key
declare c_hold cursor with hold for select id from users order by id;
-- @error does not restrict shard key
explain select count(*) from users;
-- (a forward-only cursor in a transaction is merged in the simple protocol: proxy/cursor.go)
-- @tx
-- @error does not restrict shard key
declare c scroll cursor for select id from users;
