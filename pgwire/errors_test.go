package pgwire

import (
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// The rewording helpers return changed copies: the value they were given
// may be shared (a topology error handed to every session) and must stay
// as it was.
func TestRewordingCopies(t *testing.T) {
	shared := Error(CannotConnectNow, "shard s0 has no reachable primary", "retry later")
	orig := *shared
	for name, got := range map[string]*pgconn.PgError{
		"AsFatal":     AsFatal(shared),
		"WithMessage": WithMessage(shared, "other"),
		"WithHint":    WithHint(shared, "other"),
	} {
		if got == shared {
			t.Errorf("%s returned the shared value itself", name)
		}
		if *shared != orig {
			t.Fatalf("%s changed the shared value: %+v, was %+v", name, *shared, orig)
		}
	}
	if e := AsFatal(shared); e.Severity != "FATAL" || e.Code != orig.Code || e.Message != orig.Message {
		t.Errorf("AsFatal: %+v", *e)
	}
}

// An encoded ErrorResponse decodes to the same fields, into a fresh value.
func TestErrorRoundTrip(t *testing.T) {
	e := Fatal(ProtocolViolation, "bad message")
	e.Hint = "hint"
	frame := AppendError(nil, e)
	if frame[0] != ErrorResponse || !IsFatal(frame[5:]) {
		t.Fatalf("frame %q", frame)
	}
	got := DecodeError(frame[5:])
	if got == e || got.Severity != "FATAL" || got.Code != ProtocolViolation || got.Message != "bad message" || got.Hint != "hint" {
		t.Fatalf("decoded %+v", *got)
	}
	if r := AppendReady(nil, TxFailed); string(r) != "Z\x00\x00\x00\x05E" {
		t.Fatalf("ReadyForQuery %q", r)
	}
}
