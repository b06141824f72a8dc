package fleet

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// member is one pgrouter process of the fleet.
type member struct {
	name, addr, metrics, logPath string
	cmd                          *exec.Cmd
}

// startMember runs `pgrouter serve --config etcdURL` with its own ports and
// data dir, and env (NAME=value) added to its environment. It returns once
// the member is listed by its own SHOW FLEET.
func startMember(dir, name, etcdURL string, env ...string) (*member, error) {
	m := &member{name: name, addr: freeAddr(), metrics: freeAddr(), logPath: filepath.Join(dir, name+".log")}
	logf, err := os.Create(m.logPath)
	if err != nil {
		return nil, err
	}
	m.cmd = exec.Command(bin, "serve", "--config", etcdURL, "--listen", m.addr, "--metrics-listen", m.metrics,
		"--data-dir", filepath.Join(dir, name+"-data"), "--log-format", "text")
	m.cmd.Env = append(os.Environ(), env...)
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	if err := m.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		rows, err := m.admin("SHOW FLEET")
		if err == nil && strings.Contains(fmt.Sprint(rows), m.addr) {
			return m, nil
		}
		if time.Now().After(deadline) || m.cmd.ProcessState != nil {
			m.kill()
			out, _ := os.ReadFile(m.logPath)
			return nil, fmt.Errorf("member %s did not join (last: %v):\n%s", name, err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill sends SIGKILL: no shutdown code runs, the lease simply expires.
func (m *member) kill() {
	if m.cmd.ProcessState == nil {
		m.cmd.Process.Signal(syscall.SIGKILL)
		m.cmd.Wait()
	}
}

func (m *member) dsn() string {
	return fmt.Sprintf("postgres://app:app@%s/app?sslmode=disable", m.addr)
}

// admin runs a console command on the member and returns its rows as text.
func (m *member) admin(cmd string) ([][]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://admin:admin@%s/pgrouter?sslmode=disable", m.addr))
	if err != nil {
		return nil, err
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	rows, err := c.Query(ctx, cmd)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		row := make([]string, len(vals))
		for i, v := range vals {
			row[i] = fmt.Sprint(v)
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}
