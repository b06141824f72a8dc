package testenv

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Member is one `pgrouter serve --config etcd://…` process of a fleet
// (test/fleet, test/reshard).
type Member struct {
	Name, Addr, Metrics, LogPath string
	Cmd                          *exec.Cmd
}

// StartMember runs bin as a fleet member on the etcd at etcdURL, with its
// own ports, its data dir and log under dir, and env (NAME=value) added to
// its environment. It returns once the member is listed by its own SHOW
// FLEET.
func StartMember(bin, etcdURL, dir, name string, env ...string) (*Member, error) {
	m := &Member{Name: name, Addr: freeAddr(), Metrics: freeAddr(), LogPath: filepath.Join(dir, name+".log")}
	logf, err := os.OpenFile(m.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child keeps its own descriptor
	m.Cmd = exec.Command(bin, "serve", "--config", etcdURL, "--listen", m.Addr, "--metrics-listen", m.Metrics,
		"--data-dir", filepath.Join(dir, name+"-data"), "--log-format", "text")
	m.Cmd.Env = append(os.Environ(), env...)
	m.Cmd.Stdout, m.Cmd.Stderr = logf, logf
	if err := m.Cmd.Start(); err != nil {
		return nil, err
	}
	return m, m.awaitJoined()
}

// Restart runs the member again (after Kill) on the same ports and data.
func (m *Member) Restart() error {
	logf, err := os.OpenFile(m.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(m.Cmd.Path, m.Cmd.Args[1:]...)
	cmd.Env, cmd.Stdout, cmd.Stderr = m.Cmd.Env, logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	m.Cmd = cmd
	return m.awaitJoined()
}

func (m *Member) awaitJoined() error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		rows, err := m.Admin("SHOW FLEET")
		if err == nil && strings.Contains(fmt.Sprint(rows), m.Addr) {
			return nil
		}
		if time.Now().After(deadline) || m.Cmd.ProcessState != nil {
			m.Kill()
			out, _ := os.ReadFile(m.LogPath)
			return fmt.Errorf("member %s did not join (last: %v):\n%s", m.Name, err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Kill sends SIGKILL: no shutdown code runs, the lease simply expires.
func (m *Member) Kill() {
	if m.Cmd.ProcessState == nil {
		m.Cmd.Process.Signal(syscall.SIGCONT) // a stopped process dies only once it runs
		m.Cmd.Process.Signal(syscall.SIGKILL)
		m.Cmd.Wait()
	}
}

// Leave stops the member as an operator does (SIGTERM): it closes its
// pools and revokes its lease, so the fleet stops counting it at once.
func (m *Member) Leave() {
	if m.Cmd.ProcessState == nil {
		m.Cmd.Process.Signal(syscall.SIGTERM)
		m.Cmd.Wait()
	}
}

// Stop freezes the member (SIGSTOP): alive to etcd until its lease ends,
// answering nothing; Cont lets it run again.
func (m *Member) Stop() { m.Cmd.Process.Signal(syscall.SIGSTOP) }

// Cont resumes a stopped member.
func (m *Member) Cont() { m.Cmd.Process.Signal(syscall.SIGCONT) }

// DSN is the member's client DSN for user app on database app.
func (m *Member) DSN() string {
	return fmt.Sprintf("postgres://app:app@%s/app?sslmode=disable", m.Addr)
}

// Admin runs a console command on the member and returns its rows as text.
func (m *Member) Admin(cmd string) ([][]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://admin:admin@%s/pgrouter?sslmode=disable", m.Addr))
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

// Scrape reads the member's /metrics ("" when it does not answer).
func (m *Member) Scrape() string {
	resp, err := http.Get("http://" + m.Metrics + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

func freeAddr() string {
	addr, err := freeAddrErr()
	if err != nil {
		panic(err)
	}
	return addr
}
