\set k random(1, 100000)
BEGIN;
SELECT v FROM kv WHERE k = :k;
UPDATE kv SET v = v + 1 WHERE k = :k;
END;
