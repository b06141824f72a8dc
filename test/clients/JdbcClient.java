// The workload through pgJDBC (Debian's libpostgresql-jdbc-java) with
// prepareThreshold=1: every PreparedStatement is a named server statement
// from its first execution. Batches, savepoints, CopyManager, fetch size
// (portals with a row limit), Statement.cancel. Prints "name: result" lines
// like the other workloads (see main_test.go).
import java.io.*;
import java.math.BigDecimal;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.sql.*;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.*;
import java.util.concurrent.*;

import org.postgresql.PGConnection;

public class JdbcClient {
    static final long CHECK_TIMEOUT_MS = 4000;
    static String url, items, ref;
    static Properties props = new Properties();

    interface Check { Object run(Connection c) throws Exception; }

    public static void main(String[] args) throws Exception {
        URI u = new URI(args[0]);
        String[] ui = u.getUserInfo().split(":", 2);
        url = "jdbc:postgresql://" + u.getHost() + ":" + u.getPort() + u.getPath();
        props.setProperty("user", URLDecoder.decode(ui[0], StandardCharsets.UTF_8));
        props.setProperty("password", ui.length > 1 ? URLDecoder.decode(ui[1], StandardCharsets.UTF_8) : "");
        props.setProperty("prepareThreshold", "1");
        props.setProperty("ApplicationName", "drv-jdbc");
        props.setProperty("options", "-c search_path=public,pg_catalog");
        props.setProperty("sslmode", "disable");
        items = "items_" + args[1];
        ref = "ref_" + args[1];
        run(checks());
    }

    static Connection connect() throws SQLException { return DriverManager.getConnection(url, props); }

    static void run(LinkedHashMap<String, Check> checks) {
        ExecutorService ex = Executors.newSingleThreadExecutor(JdbcClient::daemon);
        Connection conn = null;
        try { conn = ex.submit(JdbcClient::connect).get(CHECK_TIMEOUT_MS, TimeUnit.MILLISECONDS); } catch (Exception e) { System.err.println("connect: " + e); }
        for (Map.Entry<String, Check> e : checks.entrySet()) {
            System.err.println("# " + e.getKey());
            final Connection c = conn;
            Future<Object> f = ex.submit(() -> e.getValue().run(c));
            String result;
            try {
                result = fmt(f.get(e.getKey().equals("concurrency") ? 60000 : CHECK_TIMEOUT_MS, TimeUnit.MILLISECONDS));
            } catch (TimeoutException te) {
                result = "TIMEOUT";
                ex = Executors.newSingleThreadExecutor(JdbcClient::daemon); // the stuck thread is abandoned
                try { conn = ex.submit(JdbcClient::connect).get(CHECK_TIMEOUT_MS, TimeUnit.MILLISECONDS); } catch (Exception re) { System.err.println("reconnect: " + re); }
            } catch (ExecutionException ee) {
                result = error(ee.getCause());
                if (!e.getKey().startsWith("err_") && !e.getKey().startsWith("cancel")) {
                    // A check not about an error failed: a fresh connection, so
                    // that a transaction it left open cannot fail later checks.
                    try { c.close(); } catch (Exception ignored) { }
                    try { conn = ex.submit(JdbcClient::connect).get(CHECK_TIMEOUT_MS, TimeUnit.MILLISECONDS); } catch (Exception re) { System.err.println("reconnect: " + re); }
                }
            } catch (InterruptedException | SQLException ie) {
                result = "runner: " + ie;
            }
            System.out.println(e.getKey() + ": " + result.replace("\n", "\\n"));
            System.out.flush();
        }
        System.exit(0);
    }

    static Thread daemon(Runnable r) { Thread t = new Thread(r); t.setDaemon(true); return t; }

    static String error(Throwable t) {
        System.err.println(t.getClass().getSimpleName() + ": " + String.valueOf(t.getMessage()).split("\n")[0]);
        if (t instanceof BatchUpdateException && ((SQLException) t).getNextException() != null) t = ((SQLException) t).getNextException();
        if (t instanceof SQLException && ((SQLException) t).getSQLState() != null) return "ERROR " + ((SQLException) t).getSQLState();
        return "ERROR " + t.getClass().getSimpleName();
    }

    static Object attempt(Check ch, Connection c) {
        try { return ch.run(c); } catch (Exception e) { return error(e); }
    }

    static String fmt(Object o) throws SQLException {
        if (o == null) return "null";
        if (o instanceof java.sql.Array) return fmt(((java.sql.Array) o).getArray());
        if (o instanceof Object[]) {
            List<String> l = new ArrayList<>();
            for (Object x : (Object[]) o) l.add(fmt(x));
            return "[" + String.join(", ", l) + "]";
        }
        if (o instanceof int[]) return Arrays.toString((int[]) o);
        if (o instanceof List) return fmt(((List<?>) o).toArray());
        if (o instanceof String) return "'" + o + "'";
        return o + "(" + o.getClass().getSimpleName() + ")";
    }

    static List<Object> rows(ResultSet rs) throws SQLException {
        ResultSetMetaData md = rs.getMetaData();
        List<Object> out = new ArrayList<>();
        List<Object> cols = new ArrayList<>();
        for (int i = 1; i <= md.getColumnCount(); i++) cols.add(md.getColumnLabel(i) + ":" + md.getColumnTypeName(i));
        out.add(cols);
        while (rs.next()) {
            List<Object> row = new ArrayList<>();
            for (int i = 1; i <= md.getColumnCount(); i++) row.add(fmt(rs.getObject(i)));
            out.add(row.toString());
        }
        rs.close();
        return out;
    }

    static Object query(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement()) {
            if (!s.execute(sql)) return "count " + s.getUpdateCount();
            return rows(s.getResultSet());
        }
    }

    static Object prepared(Connection c, String sql, Object... params) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(sql)) {
            for (int i = 0; i < params.length; i++) ps.setObject(i + 1, params[i]);
            if (!ps.execute()) return "count " + ps.getUpdateCount();
            return rows(ps.getResultSet());
        }
    }

    static void bindItem(PreparedStatement ps, int i) throws SQLException {
        ps.setInt(1, i);
        ps.setString(2, i % 7 == 0 ? null : "item " + i + " é");
        ps.setInt(3, i * 3 - 10);
        ps.setBigDecimal(4, new BigDecimal(i + "." + String.format("%02d", i % 100)));
        ps.setObject(5, OffsetDateTime.of(2024, 1 + i % 12, 1 + i % 28, i % 24, 30, 15, i * 1000000, ZoneOffset.UTC));
        if (i % 5 == 0) ps.setNull(6, Types.BOOLEAN); else ps.setBoolean(6, i % 2 == 0);
        ps.setArray(7, ps.getConnection().createArrayOf("text", i % 3 == 0 ? new Object[]{"t" + i, null} : new Object[]{"t" + i}));
    }

    static String insertSql() { return "insert into " + items + " (id, name, qty, price, at, ok, tags) values (?, ?, ?, ?, ?, ?, ?)"; }

    static Object insertRange(Connection c, int first, int last, boolean batch) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(insertSql())) {
            List<Integer> out = new ArrayList<>();
            for (int i = first; i <= last; i++) {
                bindItem(ps, i);
                if (batch) ps.addBatch(); else out.add(ps.executeUpdate());
            }
            if (batch) for (int n : ps.executeBatch()) out.add(n);
            return out;
        }
    }

    static Object inTx(Connection c, Check body) throws Exception {
        c.setAutoCommit(false);
        try { return body.run(c); } finally { c.setAutoCommit(true); }
    }

    static Object settings(Connection c) throws SQLException {
        List<Object> out = new ArrayList<>();
        for (String s : new String[]{"application_name", "client_encoding", "TimeZone", "search_path", "extra_float_digits", "DateStyle"}) out.add(query(c, "show " + s));
        return out;
    }

    static Object after(Connection c) throws SQLException { return prepared(c, "select ?::int + 1 as x", 1); }

    static LinkedHashMap<String, Check> checks() {
        String typesSql = "select 42::int as i, 'héllo'::text as t, 12.50::numeric(10,2) as n, '2024-02-03 04:05:06.789+00'::timestamptz as ts, "
            + "true as b, null::int as z, array[1,2,3]::int[] as a, 9007199254740993::bigint as big, 1.5::float8 as f";
        LinkedHashMap<String, Check> m = new LinkedHashMap<>();
        m.put("settings", JdbcClient::settings);
        m.put("types", c -> query(c, typesSql));
        m.put("types_prepared", c -> prepared(c, typesSql));
        m.put("params", c -> prepared(c, "select ?::int + 1 as a, ?::text || ?::text as b, ?::numeric * 2 as c, ?::timestamptz as d, not ? as e, ?::int as f",
            41, "x", "y", new BigDecimal("1.25"), OffsetDateTime.of(2024, 5, 6, 7, 8, 9, 0, ZoneOffset.UTC), true, null));
        m.put("insert", c -> insertRange(c, 1, 10, false));
        m.put("batch", c -> insertRange(c, 11, 30, true));
        m.put("prepared", c -> {
            List<Object> out = new ArrayList<>();
            try (PreparedStatement ps = c.prepareStatement("select id, name, qty from " + items + " where id = ?")) {
                for (int k : new int[]{3, 4, 7, 999}) { ps.setInt(1, k); out.add(rows(ps.executeQuery())); }
            }
            return out;
        });
        m.put("select_all", c -> query(c, "select * from " + items + " order by id"));
        m.put("aggregates", c -> prepared(c, "select count(*), sum(qty), min(price), max(at), bool_and(ok) from " + items));
        m.put("fetch_size", c -> inTx(c, cc -> {
            try (PreparedStatement ps = cc.prepareStatement("select id, qty from " + items + " order by id")) {
                ps.setFetchSize(4);
                Object r = rows(ps.executeQuery());
                cc.commit();
                return r;
            }
        }));
        m.put("max_rows", c -> {
            try (PreparedStatement ps = c.prepareStatement("select id from " + items + " order by id")) {
                ps.setMaxRows(3);
                return rows(ps.executeQuery());
            }
        });
        m.put("err_syntax", c -> query(c, "selec 1"));
        m.put("after_err_syntax", JdbcClient::after);
        m.put("err_syntax_ext", c -> prepared(c, "selec ?::int", 1));
        m.put("after_err_syntax_ext", JdbcClient::after);
        m.put("err_unique", c -> insertRange(c, 1, 1, false));
        m.put("after_err_unique", JdbcClient::after);
        m.put("err_batch_unique", c -> insertRange(c, 31, 33, true) + " " + insertRange(c, 33, 34, true));
        m.put("after_err_batch_unique", c -> List.of(after(c), query(c, "select id from " + items + " where id between 31 and 34 order by id")));
        m.put("err_div", c -> prepared(c, "select 1 / ?::int", 0));
        m.put("after_err_div", JdbcClient::after);
        m.put("err_simple_div", c -> query(c, "select 1; select 1/0; select 2"));
        m.put("after_err_simple_div", JdbcClient::after);
        m.put("tx_commit", c -> List.of(inTx(c, cc -> {
            Object a = query(cc, "update " + items + " set name = 'tx' where id = 2");
            Object b = prepared(cc, "update " + items + " set name = 'tx' where id = ?", 3);
            cc.commit();
            return List.of(a, b);
        }), query(c, "select id, name from " + items + " where id in (2, 3) order by id")));
        m.put("tx_rollback", c -> List.of(inTx(c, cc -> {
            Object a = query(cc, "delete from " + items + " where id = 4");
            cc.rollback();
            return a;
        }), query(c, "select count(*) from " + items)));
        m.put("tx_error", c -> List.of(inTx(c, cc -> {
            List<Object> out = new ArrayList<>();
            out.add(attempt(x -> prepared(x, "select 1 / ?::int", 0), cc));
            out.add(attempt(x -> query(x, "select 1"), cc));
            cc.rollback();
            return out;
        }), query(c, "select 2")));
        m.put("savepoint", c -> List.of(inTx(c, cc -> {
            List<Object> out = new ArrayList<>();
            out.add(insertRange(cc, 40, 40, false));
            Savepoint sp = cc.setSavepoint("a");
            out.add(attempt(x -> insertRange(x, 1, 1, false), cc));
            cc.rollback(sp);
            out.add(insertRange(cc, 41, 43, false));
            cc.releaseSavepoint(sp);
            cc.commit();
            return out;
        }), query(c, "select id, name from " + items + " where id >= 40 order by id")));
        m.put("copy_in", c -> {
            StringBuilder sb = new StringBuilder();
            for (int i = 50; i < 60; i++) sb.append(i).append("\tcopied ").append(i).append(" é\t").append(i).append("\n");
            return c.unwrap(PGConnection.class).getCopyAPI().copyIn("copy " + items + " (id, name, qty) from stdin",
                new ByteArrayInputStream(sb.toString().getBytes(StandardCharsets.UTF_8)));
        });
        m.put("copy_out", c -> copyOut(c, "copy (select id, name from " + ref + " order by id) to stdout"));
        m.put("copy_out_key", c -> copyOut(c, "copy (select * from " + items + " where id = 5) to stdout"));
        m.put("count", c -> query(c, "select count(*) from " + items));
        m.put("update_returning", c -> {
            List<Object> r = rows(c.createStatement().executeQuery("update " + items + " set qty = qty + 1 where id <= 6 returning id, qty"));
            List<String> body = new ArrayList<>();
            for (Object x : r.subList(1, r.size())) body.add(x.toString());
            Collections.sort(body);
            return List.of(r.get(0), body);
        });
        m.put("delete_multi", c -> query(c, "delete from " + items + " where id >= 55"));
        m.put("ref_write", c -> List.of(prepared(c, "insert into " + ref + " values (?, ?)", 4, "four"), query(c, "select * from " + ref + " order by id")));
        m.put("select_all_end", c -> query(c, "select * from " + items + " order by id"));
        m.put("cancel", c -> {
            try (Statement s = c.createStatement()) {
                ScheduledExecutorService t = Executors.newSingleThreadScheduledExecutor(JdbcClient::daemon);
                t.schedule(() -> { try { s.cancel(); } catch (SQLException e) { System.err.println("cancel: " + e); } return null; }, 300, TimeUnit.MILLISECONDS);
                return rows(s.executeQuery("select pg_sleep(3)"));
            }
        });
        m.put("after_cancel", JdbcClient::after);
        m.put("settings_end", JdbcClient::settings);
        return m;
    }

    static Object copyOut(Connection c, String sql) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        long n = c.unwrap(PGConnection.class).getCopyAPI().copyOut(sql, out);
        return List.of(n, out.toString(StandardCharsets.UTF_8));
    }
}
