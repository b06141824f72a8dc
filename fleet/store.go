package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// DefaultPrefix is the key prefix when the etcd URL names none.
const DefaultPrefix = "/pgrouter"

// opTimeout bounds one etcd request: a member must notice an outage fast
// and keep serving without it.
const opTimeout = 2 * time.Second

// ErrUnreachable is wrapped by every fleet change refused because etcd does
// not answer.
var ErrUnreachable = errors.New("etcd is unreachable")

// IsURL reports whether a --config value names etcd rather than a file.
func IsURL(s string) bool { return strings.HasPrefix(s, "etcd://") }

// ParseURL splits etcd://host:2379[,host2:2379]/prefix into endpoints and
// key prefix (DefaultPrefix when the path is empty).
func ParseURL(s string) (endpoints []string, prefix string, err error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "etcd" || u.Host == "" {
		return nil, "", fmt.Errorf("%q: want etcd://host:port[,host:port…]/prefix", s)
	}
	for _, h := range strings.Split(u.Host, ",") {
		if h == "" {
			return nil, "", fmt.Errorf("%q: empty endpoint", s)
		}
		endpoints = append(endpoints, "http://"+h)
	}
	prefix = strings.TrimSuffix(u.Path, "/")
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return endpoints, prefix, nil
}

// Store is pgrouter's handle on etcd: the client, the key prefix and
// whether etcd answered lately.
type Store struct {
	cli    *clientv3.Client
	prefix string
	url    string
	log    *slog.Logger
	up     atomic.Bool
}

// Dial connects to the etcd named by rawURL. It does not wait for etcd to
// answer: the first request says whether it does.
func Dial(rawURL string, log *slog.Logger) (*Store, error) {
	endpoints, prefix, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: opTimeout,
		Logger:      zap.NewNop(), // our own logs say what matters, in slog's format
	})
	if err != nil {
		return nil, fmt.Errorf("etcd %s: %w", rawURL, err)
	}
	s := &Store{cli: cli, prefix: prefix, url: rawURL, log: log}
	s.up.Store(true)
	return s, nil
}

// Close closes the client.
func (s *Store) Close() error { return s.cli.Close() }

// URL is the etcd URL the store was dialed with.
func (s *Store) URL() string { return s.url }

// Up reports whether the last request to etcd succeeded.
func (s *Store) Up() bool { return s.up.Load() }

// key joins parts under the prefix.
func (s *Store) key(parts ...string) string {
	return s.prefix + "/" + strings.Join(parts, "/")
}

// ctx bounds one request.
func (s *Store) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, opTimeout)
}

// note records a request's outcome; an error that is not a plain answer
// from etcd (timeout, connection refused) marks etcd down.
func (s *Store) note(err error) error {
	if err == nil {
		s.up.Store(true)
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	s.up.Store(false)
	return fmt.Errorf("%w (%s): %v", ErrUnreachable, s.url, err)
}

// get reads one key (nil when absent) and the store revision.
func (s *Store) get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	r, err := s.cli.Get(ctx, key, opts...)
	return r, s.note(err)
}

// txn runs a transaction.
func (s *Store) txn(ctx context.Context, cmp []clientv3.Cmp, then, els []clientv3.Op) (*clientv3.TxnResponse, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	r, err := s.cli.Txn(ctx).If(cmp...).Then(then...).Else(els...).Commit()
	return r, s.note(err)
}

// put writes one key.
func (s *Store) put(ctx context.Context, key, val string, opts ...clientv3.OpOption) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	_, err := s.cli.Put(ctx, key, val, opts...)
	return s.note(err)
}

// grant creates a lease of ttl (whole seconds, at least 1).
func (s *Store) grant(ctx context.Context, ttl time.Duration) (clientv3.LeaseID, error) {
	id, _, err := s.grantTTL(ctx, ttl)
	return id, err
}

// grantTTL is grant that also returns the TTL etcd granted (it may raise
// what was asked to its minimum).
func (s *Store) grantTTL(ctx context.Context, ttl time.Duration) (clientv3.LeaseID, time.Duration, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	r, err := s.cli.Grant(ctx, max(int64(ttl.Round(time.Second)/time.Second), 1))
	if err := s.note(err); err != nil {
		return 0, 0, err
	}
	return r.ID, time.Duration(r.TTL) * time.Second, nil
}
