package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Member is one live pgrouter of the fleet, as it registered itself.
type Member struct {
	ID      string    `json:"id"`                // its client address (host:port)
	Version int64     `json:"version"`           // the config version it runs
	Health  string    `json:"health"`            // "ok", or why it does not run the newest version
	Refused int64     `json:"refused,omitempty"` // the newest version it refused to apply
	Started time.Time `json:"started"`
	PID     int       `json:"pid"`
	TwoPC   string    `json:"twopc,omitempty"` // its two-phase commit instance id
}

func leaseID(l int64) clientv3.LeaseID { return clientv3.LeaseID(l) }

// memberID is the client address others reach this member at: an
// unspecified host (0.0.0.0, ::) is replaced by the host name.
func memberID(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return net.JoinHostPort(host, port)
}

// record is this member's entry as it stands now.
func (f *Fleet) record() Member {
	m := Member{ID: f.id, Version: f.Version(), Health: *f.health.Load(), Refused: f.failed.Load(),
		Started: f.started.UTC(), PID: os.Getpid()}
	if p := f.twoPC.Load(); p != nil {
		m.TwoPC = *p
	}
	return m
}

// register grants a lease and writes the member record (and the two-phase
// commit owner key) under it.
func (f *Fleet) register(ctx context.Context) error {
	sent, asked := f.clock(), f.leaseTTL()
	lease, ttl, err := f.st.grantTTL(ctx, asked)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(f.record())
	ops := []clientv3.Op{clientv3.OpPut(f.st.key("members", f.id), string(b), clientv3.WithLease(lease))}
	if p := f.twoPC.Load(); p != nil {
		ops = append(ops, clientv3.OpPut(f.st.key("2pc", "owners", *p), f.id, clientv3.WithLease(lease)))
	}
	if _, err := f.st.txn(ctx, nil, ops, nil); err != nil {
		return err
	}
	f.mu.Lock()
	f.lease = int64(lease)
	f.mu.Unlock()
	f.granted.Store(int64(ttl))
	f.asked.Store(int64(asked))
	f.renewedAt.Store(int64(sent)) // a lease granted is a lease renewed
	return nil
}

// updateRecord rewrites the member record (new version or health).
func (f *Fleet) updateRecord(ctx context.Context) error {
	f.mu.Lock()
	lease := f.lease
	f.mu.Unlock()
	if lease == 0 {
		return nil
	}
	b, _ := json.Marshal(f.record())
	return f.st.put(ctx, f.st.key("members", f.id), string(b), clientv3.WithLease(leaseID(lease)))
}

// Members lists the live members, ordered by id.
func (f *Fleet) Members(ctx context.Context) ([]Member, error) {
	out, err := f.st.members(ctx)
	if err == nil {
		f.membersGauge.Set(float64(len(out)))
	}
	return out, err
}

func (s *Store) members(ctx context.Context) ([]Member, error) {
	r, err := s.get(ctx, s.key("members")+"/", clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	return parseMembers(r.Kvs), nil
}

// parseMembers decodes member records, ordered by id.
func parseMembers(kvs []*mvccpb.KeyValue) []Member {
	out := make([]Member, 0, len(kvs))
	for _, kv := range kvs {
		var m Member
		if json.Unmarshal(kv.Value, &m) == nil {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// currentRevision is etcd's revision now: watches start after it.
func (f *Fleet) currentRevision(ctx context.Context) (int64, error) {
	r, err := f.st.get(ctx, f.st.key("config", "version"))
	if err != nil {
		return 0, err
	}
	return r.Header.Revision, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Table lists the live members for the admin console (SHOW FLEET): each
// one's config version, health, and share of the connection budget.
func (f *Fleet) Table(ctx context.Context) ([]string, [][]string, error) {
	members, a, _, err := f.budgetView(ctx)
	if err != nil && f.fenced.Load() {
		err = fmt.Errorf("%w; this member is fenced (cluster.fence): it holds no backend until it renews its membership", err)
	}
	if err != nil {
		return nil, nil, err
	}
	cols := []string{"member", "config_version", "health", "pool_share", "self", "pid", "started"}
	rows := make([][]string, 0, len(members))
	for _, m := range members {
		share := "-"
		if c, ok := a.Caps[m.ID]; ok {
			share = strconv.Itoa(c)
		}
		rows = append(rows, []string{m.ID, strconv.FormatInt(m.Version, 10), m.Health, share,
			strconv.FormatBool(m.ID == f.id), strconv.Itoa(m.PID), m.Started.Format(time.RFC3339)})
	}
	return cols, rows, nil
}
