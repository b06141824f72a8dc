// Package soak runs pgrouter as a process in front of a local 2-shard
// cluster with thousands of clients for minutes and checks that its
// goroutines, file descriptors and RSS stay flat. It is not part of
// `make test`: its test builds only with the soak tag, from `make soak`
// (SOAK_CLIENTS, default 2000; SOAK_DURATION, default 2m; SOAK_THINK,
// the pause between a client's statements, default 1s).
package soak
