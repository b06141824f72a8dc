package proxy

import (
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// A paused database holds new transactions until RESUME; others pass.
func TestPauseHoldsUntilResume(t *testing.T) {
	s := &Server{sessions: map[uint32]*session{}}
	if busy := s.pause.pause("app", s, time.Second); busy != 0 {
		t.Fatalf("busy = %d with no sessions", busy)
	}
	if err := s.waitResumed("other", time.Second); err != nil {
		t.Fatalf("another database was held: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.waitResumed("app", time.Minute) }()
	select {
	case err := <-done:
		t.Fatalf("waitResumed returned while paused: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if s.pause.waiting.Load() != 1 {
		t.Errorf("waiting = %d, want 1", s.pause.waiting.Load())
	}
	s.pause.resume("other") // wakes the waiter, which must go back to waiting
	select {
	case err := <-done:
		t.Fatalf("waitResumed returned after resuming another database: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	s.pause.resume("")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RESUME did not release the waiter")
	}
	if s.pause.any.Load() || s.pause.waiting.Load() != 0 {
		t.Errorf("after RESUME: any=%v waiting=%d", s.pause.any.Load(), s.pause.waiting.Load())
	}
}

// A wait longer than the acquire timeout ends in 53300, like a pool wait.
func TestPauseTimeout(t *testing.T) {
	s := &Server{sessions: map[uint32]*session{}}
	s.pause.pause("", s, time.Second)
	err := s.waitResumed("app", 50*time.Millisecond)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "53300" {
		t.Fatalf("err = %v, want 53300", err)
	}
}
