package topology

import (
	"time"

	"github.com/pgrouter/pgrouter/config"
)

// settings are the config values the monitors and choosers use, with
// defaults filled in so a Config built in code (zero values) still works.
type settings struct {
	interval, timeout, lagInterval time.Duration
	loop                           time.Duration // monitor period: min(interval, lagInterval)
	failThreshold                  int
	banDuration                    time.Duration // longest breaker cool-down
	breakerCooldown                time.Duration // first breaker cool-down
	maxLagBytes                    int64
	maxLag                         time.Duration
	fallbackError                  bool
	readYourWrites                 bool
	strategy                       string

	// Monitor login: the first admin user's backend credentials, else the
	// first user's; database: the first database's dbname, else "postgres".
	monUser, monPassword, monDB string
}

func newSettings(cfg *config.Config) *settings {
	h, r := cfg.Health, cfg.Replicas
	st := &settings{
		interval:        orDefault(h.Interval.D(), time.Second),
		timeout:         orDefault(h.Timeout.D(), time.Second),
		lagInterval:     orDefault(r.LagCheckInterval.D(), 500*time.Millisecond),
		failThreshold:   max(h.FailThreshold, 1),
		banDuration:     orDefault(h.BanDuration.D(), 10*time.Second),
		breakerCooldown: orDefault(h.BreakerCooldown.D(), time.Second),
		maxLagBytes:     max(r.MaxLagBytes, 0),
		maxLag:          max(r.MaxLag.D(), 0),
		fallbackError:   r.Fallback == "error",
		readYourWrites:  r.ReadYourWrites == nil || *r.ReadYourWrites,
		strategy:        r.Strategy,
		monUser:         "postgres",
		monDB:           "postgres",
	}
	if h.FailThreshold == 0 {
		st.failThreshold = 2
	}
	if st.strategy == "" {
		st.strategy = StrategyRoundRobin
	}
	st.loop = min(st.interval, st.lagInterval)
	if u := monitorUser(cfg.Users); u != nil {
		st.monUser, st.monPassword = backendCredentials(u)
	}
	if len(cfg.Databases) > 0 {
		st.monDB = backendDatabase(&cfg.Databases[0])
	}
	return st
}

func monitorUser(users []config.User) *config.User {
	for i := range users {
		if users[i].Admin {
			return &users[i]
		}
	}
	if len(users) > 0 {
		return &users[0]
	}
	return nil
}

func (st *settings) strategyFor(cs config.Shard) string {
	if cs.Strategy != "" {
		return cs.Strategy
	}
	return st.strategy
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
