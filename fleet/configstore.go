package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/pgrouter/pgrouter/config"
)

// Doc is one published config version.
type Doc struct {
	Version  int64     `json:"version"`
	YAML     string    `json:"yaml"`
	Force    bool      `json:"force"`             // apply changes that move data (RELOAD FORCE)
	Source   string    `json:"source"`            // the file it was pushed from, for people
	Reshard  string    `json:"reshard,omitempty"` // the reshard whose cutover published it (its moves are accepted)
	PushedAt time.Time `json:"pushed_at"`
}

// Name is how errors and logs name the version: the etcd URL and version.
func (s *Store) docName(v int64) string { return fmt.Sprintf("%s@v%d", s.url, v) }

// Push validates data as a config file (errors carry source:line, as
// `config check` prints them) and publishes it as the next version, in one
// transaction on the version key: two pushes at once cannot both become
// version N. It returns the new version.
func (s *Store) Push(ctx context.Context, data []byte, source string, force bool) (int64, error) {
	if _, err := config.Parse(data, source); err != nil {
		return 0, err
	}
	vkey, dkey := s.key("config", "version"), s.key("config", "doc")
	for attempt := 0; attempt < 10; attempt++ {
		r, err := s.get(ctx, vkey)
		if err != nil {
			return 0, fmt.Errorf("config push refused: %w", err)
		}
		var cur int64
		rev := int64(0)
		if len(r.Kvs) == 1 {
			cur, _ = strconv.ParseInt(string(r.Kvs[0].Value), 10, 64)
			rev = r.Kvs[0].ModRevision
		}
		doc := Doc{Version: cur + 1, YAML: string(data), Force: force, Source: source, PushedAt: time.Now().UTC()}
		b, _ := json.Marshal(doc)
		t, err := s.txn(ctx,
			[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(vkey), "=", rev)},
			[]clientv3.Op{clientv3.OpPut(vkey, strconv.FormatInt(doc.Version, 10)), clientv3.OpPut(dkey, string(b))}, nil)
		if err != nil {
			return 0, fmt.Errorf("config push refused: %w", err)
		}
		if t.Succeeded {
			return doc.Version, nil
		}
		// Another push won the race: publish on top of it.
	}
	return 0, fmt.Errorf("config push: the version key kept changing under concurrent pushes; try again")
}

// Current reads the newest published version (nil when none was pushed).
func (s *Store) Current(ctx context.Context) (*Doc, error) {
	r, err := s.get(ctx, s.key("config", "doc"))
	if err != nil {
		return nil, err
	}
	if len(r.Kvs) == 0 {
		return nil, nil
	}
	var d Doc
	if err := json.Unmarshal(r.Kvs[0].Value, &d); err != nil {
		return nil, fmt.Errorf("%s: config document is not valid JSON: %w", s.url, err)
	}
	return &d, nil
}

// Parse turns a published version into a config; errors name the etcd URL
// and version where a file would name its path.
func (s *Store) Parse(d *Doc) (*config.Config, error) {
	return config.Parse([]byte(d.YAML), s.docName(d.Version))
}

// AwaitVersion waits until every live member runs version v or later, at
// most wait; it returns the members that still do not, and how many are
// live. It returns early when each of those has refused v (or a newer
// version): waiting longer would not change their answer.
func (s *Store) AwaitVersion(ctx context.Context, v int64, wait time.Duration) (lagging []Member, live int, err error) {
	deadline := time.Now().Add(wait)
	for {
		members, err := s.members(ctx)
		if err != nil {
			return nil, 0, err
		}
		lagging = lagging[:0]
		refused := 0
		for _, m := range members {
			if m.Version < v {
				lagging = append(lagging, m)
				if m.Refused >= v {
					refused++
				}
			}
		}
		if refused == len(lagging) || time.Now().After(deadline) {
			return lagging, len(members), nil
		}
		sleep(ctx, 50*time.Millisecond)
	}
}
