// Package localpg starts throw-away PostgreSQL clusters on loopback ports
// from the installed server binaries: N shards, each one primary plus M
// streaming replicas. Tests, benchmarks and `pgrouter demo` use it.
//
//	Start(ctx, Options{Shards: 2, Replicas: 1})
//	  ├─ shard0: initdb → postgres (primary) → pg_basebackup -R → postgres (replica) …
//	  └─ shard1: … (shards are built in parallel)
//	Cluster.Close() stops every server and removes the temp dir.
//
// # Layout
//
// Every node gets its own directory under Cluster.Dir: <dir>/<node>/data is
// the data directory, <dir>/<node>/postgres.log the server log (stderr), and
// the node directory itself holds the Unix socket. Servers listen on
// 127.0.0.1 only, on ports picked free at start. The superuser is "postgres"
// with a SCRAM password over TCP; Unix-socket logins and replication
// connections from 127.0.0.1 are trusted.
//
// # Running as root
//
// initdb and postgres refuse to run as root, so when the caller is root every
// server binary runs as the "postgres" OS user (SysProcAttr.Credential) and
// the cluster directory is chowned to it. Any directory given in Options.Dir
// must therefore be reachable (x permission on every parent) by that user.
//
// # No server is left behind
//
// Three layers, from the gentle to the blunt:
//
//  1. Cluster.Close stops every postmaster with SIGINT (Postgres "fast"
//     shutdown), escalates to SIGQUIT ("immediate") and finally SIGKILLs the
//     node's process group. It is idempotent.
//  2. Start installs a SIGINT/SIGTERM handler (signal.Notify on a private
//     channel) unless Options.NoSignalHandler is set: on a signal it runs
//     Close, unregisters itself and re-raises the signal, so the process
//     still dies of it as it would have without us (or, if the program has
//     its own handler, that handler sees the signal as usual).
//  3. For a process that dies without running any Go code (SIGKILL, a test
//     timeout panic, os.Exit), each postmaster is started directly as our
//     child - not detached through pg_ctl - in its own process group and
//     with Pdeathsig = SIGQUIT, so the kernel asks it for an immediate
//     shutdown the moment its parent goes away; the postmaster then stops
//     its own backends. Linux delivers the parent-death signal when the
//     *thread* that forked the child exits, and the Go runtime may retire
//     threads, so all postmasters of a cluster are forked from one goroutine
//     that holds runtime.LockOSThread for the cluster's lifetime (see
//     spawner). That thread only ends when Close is done or the process
//     dies, which is exactly when the servers must go.
//
// Layer 3 cannot remove the temporary directory of a killed process; stale
// "localpg-*" directories (older than a minute, owner process gone, no live
// postmaster) are removed by the next Start that uses a temporary Dir.
//
// # Keeping a cluster
//
// With Options.Dir set, the directory survives Close and a later Start on
// it reuses the data directories (the `pgrouter demo --dir` case); only the
// ports change. Replicas get primary_conninfo (with application_name = the
// node name, as seen in pg_stat_replication) on the postgres command line so
// they follow their primary's new port.
package localpg
