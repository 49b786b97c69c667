package nfqueue_test

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nfqueue-go/nfqueue"
)

// queueBurst sends n datagrams (few enough for the sender's buffer) and waits until the kernel has queued them
// all, so that the code measured afterwards does not include the sending.
func queueBurst(t *testing.T, u *udpPath, conn *nfqueue.Conn, n int) {
	t.Helper()
	before := conn.Stats().Kernel.LastID
	msg := make([]byte, 64)
	for range n {
		u.send(t, msg)
	}
	deadline := time.Now().Add(5 * time.Second)
	for conn.Stats().Kernel.LastID-before < uint32(n) {
		if time.Now().After(deadline) {
			t.Fatalf("kernel queued %d of %d datagrams", conn.Stats().Kernel.LastID-before, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestIntegrationZeroAllocPull: ReadPacket and SetVerdict (plain, with a
// mark, and batch) allocate nothing per packet.
func TestIntegrationZeroAllocPull(t *testing.T) {
	skipIfRace(t)
	const runs = 100
	u := newUDPPath(t, false, "--queue-num", "80")
	conn := u.open(t, 80, nil)
	var p nfqueue.Packet
	for _, tc := range []struct {
		name    string
		verdict func(id uint32) error
	}{
		{"accept", func(id uint32) error { return conn.SetVerdict(id, nfqueue.Accept) }},
		{"mark", func(id uint32) error { return conn.SetVerdict(id, nfqueue.Accept.WithMark(3)) }},
		{"batch", func(id uint32) error { return conn.SetVerdictBatch(id, nfqueue.Accept.WithMark(3)) }},
	} {
		queueBurst(t, u, conn, runs+1)
		var err error
		allocs := testing.AllocsPerRun(runs, func() {
			if err = conn.ReadPacket(&p); err == nil {
				err = tc.verdict(p.ID)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if allocs != 0 {
			t.Errorf("%s: %v allocations per packet, want 0", tc.name, allocs)
		}
		drainRx(u.rx)
	}
}

// TestIntegrationZeroAllocServe: Serve allocates nothing per packet, with
// and without batching.
func TestIntegrationZeroAllocServe(t *testing.T) {
	skipIfRace(t)
	const n = 150
	for _, batching := range []bool{true, false} {
		t.Run(map[bool]string{true: "batching", false: "no-batching"}[batching], func(t *testing.T) {
			u := newUDPPath(t, false, "--queue-num", "81")
			conn := u.open(t, 81, &nfqueue.Config{DisableBatching: !batching})
			queueBurst(t, u, conn, n)
			var handled atomic.Int32
			var before, after runtime.MemStats
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			runtime.ReadMemStats(&before)
			go func() {
				done <- conn.Serve(ctx, func(p *nfqueue.Packet) nfqueue.Verdict {
					if handled.Add(1) == n {
						runtime.ReadMemStats(&after)
					}
					return nfqueue.Accept.WithMark(1)
				})
			}()
			deadline := time.Now().Add(10 * time.Second)
			for handled.Load() < n && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			cancel()
			<-done
			if handled.Load() < n {
				t.Fatalf("handled %d of %d", handled.Load(), n)
			}
			// Serve allocates a little once (its state, the context
			// watcher); nothing per packet.
			if allocs := after.Mallocs - before.Mallocs; allocs > 20 {
				t.Errorf("%d allocations for %d packets", allocs, n)
			}
		})
	}
}
