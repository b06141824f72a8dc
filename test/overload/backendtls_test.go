package overload

import (
	"context"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/test/testenv"
)

// serverCert writes a self-signed certificate for 127.0.0.1 that the
// Postgres servers (running as user postgres) can read, in a fresh dir.
func serverCert(t *testing.T, name string) (cert, key string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgrouter-tls-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cert, key, err = testenv.WriteSelfSigned(dir)
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 { // the servers run as postgres and need to own their key
		pg, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("user postgres (servers run as it): %v", err)
		}
		uid, _ := strconv.Atoi(pg.Uid)
		gid, _ := strconv.Atoi(pg.Gid)
		if err := os.Chown(key, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return cert, key
}

func sslSettings(cert, key string) map[string]string {
	return map[string]string{"ssl": "on", "ssl_cert_file": cert, "ssl_key_file": key}
}

// backendSSL reports whether the backend running the query reached
// pgrouter over TLS (pg_stat_ssl of its own connection).
func backendSSL(ctx context.Context, c *pgx.Conn) (bool, error) {
	var ssl bool
	err := c.QueryRow(ctx, "select ssl from pg_stat_ssl where pid = pg_backend_pid()").Scan(&ssl)
	return ssl, err
}

// TestBackendTLSVerifyFull: with backend_tls verify-full and the servers'
// CA, pgrouter's backend connections use TLS (Postgres' own pg_stat_ssl
// says so). Then the server is switched to pg_hba method "password"
// (cleartext): a new pool's login is refused instead of sending the
// password in clear.
func TestBackendTLSVerifyFull(t *testing.T) {
	cert, key := serverCert(t, "ok")
	e := startEnv(t, testenv.Options{Settings: sslSettings(cert, key), Sections: map[string]string{
		"backend_tls": "  sslmode: verify-full\n  ca_file: " + cert,
	}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := conns{t, e}.must("app", "app", "app")
	ssl, err := backendSSL(ctx, c)
	if err != nil {
		t.Fatalf("query through pgrouter: %v", err)
	}
	if !ssl {
		t.Fatalf("pg_stat_ssl.ssl = false for pgrouter's backend: the connection is plaintext despite sslmode verify-full")
	}

	// Cleartext password auth on the server: pgrouter must not send it.
	p := e.Cluster.Shards[0].Primary
	hba := filepath.Join(p.DataDir, "pg_hba.conf")
	b, err := os.ReadFile(hba)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hba, []byte(strings.ReplaceAll(string(b), "scram-sha-256", "password")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.Exec(ctx, "select pg_reload_conf()"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	md5c := conns{t, e}.must("md5user", "md5pw", "app") // a new pool: a new backend login
	_, err = md5c.Exec(ctx, "select 1")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "08001" {
		t.Fatalf("server asks for a cleartext password: got %v, want the login refused (08001)", err)
	}
	t.Logf("refused: %s", pe.Message)

	// allow_cleartext_password: true (by a reload) lets a new pool log in.
	b, err = os.ReadFile(e.Path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), "backend_tls:\n", "backend_tls:\n  allow_cleartext_password: true\n", 1)
	if err := os.WriteFile(e.Path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.Proxy.Reload(e.Path, false); err != nil {
		t.Fatalf("reload: %v", err)
	}
	tc := conns{t, e}.must("trusty", "", "app") // another new pool, made after the reload
	if _, err := tc.Exec(ctx, "select 1"); err != nil {
		t.Fatalf("with allow_cleartext_password: true: %v", err)
	}
}

// TestBackendTLSWrongCA: a server certificate that does not chain to
// ca_file is never used, and pgrouter never falls back to plaintext.
func TestBackendTLSWrongCA(t *testing.T) {
	cert, key := serverCert(t, "server")
	otherCA, _ := serverCert(t, "other")
	e := startEnv(t, testenv.Options{Settings: sslSettings(cert, key), Sections: map[string]string{
		"backend_tls": "  sslmode: verify-ca\n  ca_file: " + otherCA,
	}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Login itself may need a backend (server parameters): the refusal can
	// come at connect or at the first statement.
	c, err := conns{t, e}.open("app", "app", "app")
	if err == nil {
		_, err = c.Exec(ctx, "select 1")
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || (pe.Code != "08001" && pe.Code != "57P03") {
		t.Fatalf("server certificate from another CA: got %v, want the backend refused (08001, or 57P03 once its breaker is open)", err)
	}
	t.Logf("refused: %s %s", pe.Code, pe.Message)
}

// TestClientTLSRequired: with tls.mode require a plaintext client is refused
// with 28000 before it logs in; the same client over TLS gets in.
func TestClientTLSRequired(t *testing.T) {
	cert, key := serverCert(t, "client")
	e := startEnv(t, testenv.Options{Sections: map[string]string{
		"tls": "  cert_file: " + cert + "\n  key_file: " + key + "\n  mode: require",
	}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := pgx.Connect(ctx, e.AppDSN()) // sslmode=disable
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "28000" {
		t.Fatalf("plaintext client: got %v, want 28000", err)
	}
	dsn := strings.Replace(e.AppDSN(), "sslmode=disable", "sslmode=require", 1)
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("TLS client: %v", err)
	}
	defer c.Close(ctx)
	var one int
	if err := c.QueryRow(ctx, "select 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("select 1 over TLS: %v, %d", err, one)
	}
}
