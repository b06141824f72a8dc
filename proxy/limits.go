package proxy

import (
	"fmt"
	"sync"
	"time"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/pgrouter/pgrouter/config"
)

// Limit names: the bounded label of pgrouter_overload_rejected_total.
const (
	limitMaxClients      = "max_clients"
	limitUserClients     = "user_clients"
	limitDatabaseClients = "database_clients"
	limitQueryRate       = "query_rate"
)

// limits enforces the limits: section (config.Limits): logged-in clients
// per user and per database, and each user's statement rate. Counts are
// keyed by name so they survive reloads.
type limits struct {
	mu       sync.Mutex
	users    map[string]int
	dbs      map[string]int
	rates    map[string]*rate.Limiter
	rejected *prometheus.CounterVec
	delayed  prometheus.Counter
}

func newLimits(reg *prometheus.Registry) *limits {
	l := &limits{users: map[string]int{}, dbs: map[string]int{}, rates: map[string]*rate.Limiter{},
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgrouter_overload_rejected_total",
			Help: "Logins and statements refused by an overload limit (max_clients, user_clients, database_clients, query_rate)."},
			[]string{"limit"}),
		delayed: prometheus.NewCounter(prometheus.CounterOpts{Name: "pgrouter_query_rate_delayed_total",
			Help: "Statements delayed by limits.user_query_rate (they then ran)."}),
	}
	for _, name := range []string{limitMaxClients, limitUserClients, limitDatabaseClients, limitQueryRate} {
		l.rejected.WithLabelValues(name) // export zeros: an alert can use rate() from the start
	}
	reg.MustRegister(l.rejected, l.delayed)
	return l
}

// admit counts a logged-in client of user on db, or refuses it with the
// error Postgres gives for a role's or database's connection limit. Every
// nil return must be paired with leave.
func (l *limits) admit(cfg *config.Limits, u *config.User, db string) *pgconn.PgError {
	user, max, key := u.Name, cfg.MaxClientsPerUser, "limits.max_clients_per_user"
	if u.MaxClients > 0 {
		max, key = u.MaxClients, "max_clients of the user"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if max > 0 && l.users[user] >= max {
		l.rejected.WithLabelValues(limitUserClients).Inc()
		return &pgconn.PgError{Severity: "FATAL", Code: pgwire.TooManyConnections, Message: fmt.Sprintf("too many connections for role %q", user),
			Hint: fmt.Sprintf("pgrouter %s is %d", key, max)}
	}
	if max := cfg.MaxClientsPerDatabase; max > 0 && l.dbs[db] >= max {
		l.rejected.WithLabelValues(limitDatabaseClients).Inc()
		return &pgconn.PgError{Severity: "FATAL", Code: pgwire.TooManyConnections, Message: fmt.Sprintf("too many connections for database %q", db),
			Hint: fmt.Sprintf("pgrouter limits.max_clients_per_database is %d", max)}
	}
	l.users[user]++
	l.dbs[db]++
	return nil
}

// leave undoes a successful admit.
func (l *limits) leave(user, db string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.users[user]--; l.users[user] <= 0 {
		delete(l.users, user)
	}
	if l.dbs[db]--; l.dbs[db] <= 0 {
		delete(l.dbs, db)
	}
}

// limiter is user's token bucket for cfg (nil when the rate is off). A
// reload that changes the rate adjusts the existing bucket.
func (l *limits) limiter(cfg *config.Limits, u *config.User) *rate.Limiter {
	perSec, burst := queryRate(cfg, u)
	if perSec <= 0 {
		return nil
	}
	lim := rate.Limit(perSec)
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.rates[u.Name]
	if r == nil {
		r = rate.NewLimiter(lim, burst)
		l.rates[u.Name] = r
	} else if r.Limit() != lim || r.Burst() != burst {
		r.SetLimit(lim)
		r.SetBurst(burst)
	}
	return r
}

// queryRate is u's statement rate (its query_rate, else
// limits.user_query_rate) and bucket size (at least the rate when the user
// raised it above the configured burst).
func queryRate(cfg *config.Limits, u *config.User) (perSec, burst int) {
	perSec, burst = cfg.UserQueryRate, max(cfg.UserQueryBurst, 1)
	if u.QueryRate > 0 {
		perSec, burst = u.QueryRate, max(burst, u.QueryRate)
	}
	return perSec, burst
}

// throttle applies the user's statement rate before a statement (or
// extended-protocol batch) that starts outside a transaction: it waits for
// a token up to query_rate_wait, else refuses with 53400. Inside a
// transaction nothing is delayed or refused: the client holds a backend and
// maybe locks, and refusing there would need the backend's transaction
// aborted too.
func (ss *session) throttle() error {
	if ss.rate == nil || ss.be != nil || ss.txStatus != pgwire.TxIdle {
		return nil
	}
	if ss.rate.Allow() {
		return nil
	}
	cfg := &ss.st.cfg.Limits
	r := ss.rate.Reserve()
	if d := r.Delay(); d > cfg.QueryRateWait.D() {
		r.Cancel()
		ss.srv.limits.rejected.WithLabelValues(limitQueryRate).Inc()
		perSec, burst := queryRate(cfg, ss.user)
		return &pgconn.PgError{Severity: "ERROR", Code: pgwire.ConfigurationLimitExceeded,
			Message: fmt.Sprintf("query rate limit exceeded for role %q", ss.user.Name),
			Hint: fmt.Sprintf("pgrouter allows this user %d statements per second (burst %d, limits.user_query_rate or the user's query_rate); retry later",
				perSec, burst)}
	} else {
		ss.srv.limits.delayed.Inc()
		time.Sleep(d)
	}
	return nil
}

// clientLimit is pool.max_clients, raised by limits.admin_reserved for a
// login to the admin console: operators can get in when clients cannot.
func clientLimit(cfg *config.Config, startup *pgproto3.StartupMessage) int {
	if startup.Parameters["database"] == AdminDatabase {
		return cfg.Pool.MaxClients + cfg.Limits.AdminReserved
	}
	return cfg.Pool.MaxClients
}
