package nfqueue_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nfqueue-go/nfqueue"
	"github.com/nfqueue-go/nfqueue/internal/nstest"
)

// TestIntegrationInvalidVerdicts gives packets invalid verdicts through
// SetVerdict (refused with ErrInvalidVerdict, the packet still awaiting a
// valid one) and from a Serve handler (reported to OnError, the packet
// dropped). Nothing panics and the queue keeps working.
func TestIntegrationInvalidVerdicts(t *testing.T) {
	big := make([]byte, nfqueue.MaxPayload+1)
	invalid := []struct {
		name string
		v    nfqueue.Verdict
	}{
		{"payload over 65535 bytes", nfqueue.Accept.WithPayload(big)},
		{"bypass on accept", nfqueue.Accept.WithBypass()},
		{"defer through SetVerdict", nfqueue.Defer},
	}
	u := newUDPPath(t, false, "--queue-num", "70")
	conn := u.open(t, 70, nil)
	for _, tc := range invalid {
		t.Run("SetVerdict/"+tc.name, func(t *testing.T) {
			u.send(t, []byte(tc.name))
			var p nfqueue.Packet
			if err := conn.ReadPacket(&p); err != nil {
				t.Fatal(err)
			}
			if err := conn.SetVerdict(p.ID, tc.v); !errors.Is(err, nfqueue.ErrInvalidVerdict) {
				t.Fatalf("SetVerdict(%v): %v, want ErrInvalidVerdict", tc.v, err)
			}
			if err := conn.SetVerdict(p.ID, nfqueue.Accept); err != nil {
				t.Fatalf("valid verdict after an invalid one: %v", err)
			}
			if got, ok := nstest.Recv(u.rx, 5*time.Second); !ok || string(got) != tc.name {
				t.Fatalf("received %q (ok=%v)", got, ok)
			}
		})
	}
	t.Run("SetVerdictBatch/with payload", func(t *testing.T) {
		u.send(t, []byte("batch"))
		var p nfqueue.Packet
		if err := conn.ReadPacket(&p); err != nil {
			t.Fatal(err)
		}
		if err := conn.SetVerdictBatch(p.ID, nfqueue.Accept.WithPayload([]byte("x"))); !errors.Is(err, nfqueue.ErrInvalidVerdict) {
			t.Fatalf("batch verdict with a payload: %v", err)
		}
		if err := conn.SetVerdictBatch(p.ID, nfqueue.Accept.WithConnMark(1)); !errors.Is(err, nfqueue.ErrInvalidVerdict) {
			t.Fatalf("batch verdict with a connmark: %v", err)
		}
		if err := conn.SetVerdictBatch(p.ID, nfqueue.Accept); err != nil {
			t.Fatal(err)
		}
		nstest.Recv(u.rx, 5*time.Second)
	})
	t.Run("Serve", func(t *testing.T) {
		var mu sync.Mutex
		var errs []error
		u := newUDPPath(t, false, "--queue-num", "71")
		conn := u.open(t, 71, &nfqueue.Config{OnError: func(err error) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}})
		serve(t, conn, func(p *nfqueue.Packet) nfqueue.Verdict {
			if bytes.HasSuffix(p.Payload, []byte("ok")) {
				return nfqueue.Accept
			}
			return nfqueue.Accept.WithPayload(big)
		})
		u.send(t, []byte("invalid"))
		u.send(t, []byte("ok"))
		if got, ok := nstest.Recv(u.rx, 5*time.Second); !ok || string(got) != "ok" {
			t.Fatalf("received %q (ok=%v), want only %q", got, ok, "ok")
		}
		if got, ok := nstest.Recv(u.rx, 200*time.Millisecond); ok {
			t.Fatalf("the packet with an invalid verdict arrived: %q", got)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(errs) != 1 || !errors.Is(errs[0], nfqueue.ErrInvalidVerdict) {
			t.Fatalf("OnError got %v, want one ErrInvalidVerdict", errs)
		}
		if s := conn.Stats(); s.Dropped != 1 || s.Accepted != 1 {
			t.Fatalf("dropped %d accepted %d", s.Dropped, s.Accepted)
		}
	})
}

// TestIntegrationTruncatedPayload copies only part of each packet: the
// packet says it is truncated, and a replacement payload for it is refused.
func TestIntegrationTruncatedPayload(t *testing.T) {
	u := newUDPPath(t, false, "--queue-num", "72")
	conn := u.open(t, 72, &nfqueue.Config{CopyRange: 40})
	u.send(t, bytes.Repeat([]byte("x"), 100))
	var p nfqueue.Packet
	if err := conn.ReadPacket(&p); err != nil {
		t.Fatal(err)
	}
	if !p.Truncated() || len(p.Payload) != 40 || p.OrigLen() != 128 {
		t.Fatalf("truncated %v, payload %d bytes, original %d", p.Truncated(), len(p.Payload), p.OrigLen())
	}
	if err := conn.SetVerdict(p.ID, nfqueue.Accept.WithPayload(p.Payload)); !errors.Is(err, nfqueue.ErrInvalidVerdict) {
		t.Fatalf("payload for a truncated packet: %v", err)
	}
	if err := conn.SetVerdict(p.ID, nfqueue.Accept); err != nil {
		t.Fatal(err)
	}
	if got, ok := nstest.Recv(u.rx, 5*time.Second); !ok || len(got) != 100 {
		t.Fatalf("received %d bytes (ok=%v)", len(got), ok)
	}
	if s := conn.Stats(); s.Truncated != 1 {
		t.Errorf("Truncated = %d", s.Truncated)
	}
}

// TestIntegrationAfterClose: every operation on a closed Conn returns
// ErrClosed.
func TestIntegrationAfterClose(t *testing.T) {
	ns := nstest.New(t)
	conn, err := nfqueue.Open(73, &nfqueue.Config{NetNS: ns.Path})
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	var p nfqueue.Packet
	for name, err := range map[string]error{
		"ReadPacket":      conn.ReadPacket(&p),
		"SetVerdict":      conn.SetVerdict(1, nfqueue.Accept),
		"SetVerdictBatch": conn.SetVerdictBatch(1, nfqueue.Accept),
		"Serve":           conn.Serve(context.Background(), func(*nfqueue.Packet) nfqueue.Verdict { return nfqueue.Accept }),
	} {
		if name == "Serve" {
			if err != nil {
				t.Errorf("Serve on a closed Conn: %v, want nil", err)
			}
			continue
		}
		if !errors.Is(err, nfqueue.ErrClosed) {
			t.Errorf("%s on a closed Conn: %v", name, err)
		}
	}
	if err := conn.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	_ = fmt.Sprint()
}
