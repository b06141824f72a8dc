// Package pool owns backend connections: dialing (pgconn.Connect then Hijack),
// bounded pools with a FIFO wait queue and timeouts, idle/lifetime reaping and
// health checks before reuse. It makes no routing decisions.
//
//	Acquire ──▶ idle stack (LIFO, hot cache) ──▶ ping if idle > HealthCheckIdle
//	        └─▶ Total < Size ? dial (pgconn → Hijack → raw net.Conn)
//	        └─▶ else wait in a strict FIFO queue (MaxWaiters, AcquireTimeout, ctx)
//	Release ──▶ oldest waiter gets the conn directly, else back on the idle stack
//	            (a conn older than MaxLifetime is closed; its slot goes to a waiter, who dials)
//	Discard ──▶ close, free the slot, the oldest waiter dials a replacement
//
// A Total slot is reserved before dialing and freed on dial failure (08001), so
// Size is never exceeded and the mutex is never held across I/O. One reaper
// goroutine per pool closes conns idle longer than IdleTimeout (keeping MinIdle
// open), closes idle conns past MaxLifetime and tops the pool up to MinIdle.
// Client-facing failures are *pgconn.PgError: 53300 (wait timeout or full queue),
// 08001 (cannot dial), 08006 (pool closed). After Close, released conns are closed.
// Hot-path Acquire/Release allocate nothing: waiters are recycled via sync.Pool.
package pool
