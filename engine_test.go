package nfqueue_test

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/nfqueue-go/nfqueue"
	"github.com/nfqueue-go/nfqueue/nfqtest"
)

var (
	srcAddr = netip.MustParseAddrPort("192.0.2.1:4000")
	dstAddr = netip.MustParseAddrPort("192.0.2.2:53")
)

// TestDeferredNotCoveredByBatch defers every third packet to a goroutine
// that drops it at once, while Serve accepts the others in batches: no
// deferred packet may be accepted by a batch verdict sent while its own
// verdict was on its way.
func TestDeferredNotCoveredByBatch(t *testing.T) {
	const n = 3000
	k := nfqtest.New(t, 0, nil)
	conn := k.Conn()
	deferred := make(chan uint32, n)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for id := range deferred {
			if err := conn.SetVerdict(id, nfqueue.Drop); err != nil {
				t.Errorf("SetVerdict(%d): %v", id, err)
			}
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- conn.Serve(ctx, func(p *nfqueue.Packet) nfqueue.Verdict {
			if p.ID%3 == 0 {
				deferred <- p.ID
				return nfqueue.Defer
			}
			return nfqueue.Accept
		})
	}()
	payload := nfqtest.UDP(srcAddr, dstAddr, []byte("q"))
	for range n {
		k.InjectBytes(payload)
	}
	vs, err := k.WaitVerdicts(n, 10*time.Second)
	cancel()
	<-served
	close(deferred)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if v.Err != 0 {
			continue // a verdict the kernel refused did not apply
		}
		if want := map[bool]nfqueue.VerdictKind{true: nfqueue.KindDrop, false: nfqueue.KindAccept}[v.ID%3 == 0]; v.Kind != want {
			t.Fatalf("packet %d got %v (batch %v), want %v", v.ID, v.Kind, v.Batch, want)
		}
	}
}

// TestSetVerdictBatchWhileServing: a batch verdict would also cover the
// packets Serve is handling, so it is refused while Serve runs.
func TestSetVerdictBatchWhileServing(t *testing.T) {
	k := nfqtest.New(t, 0, nil)
	conn := k.Conn()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	held := make(chan uint32, 1)
	go conn.Serve(ctx, func(p *nfqueue.Packet) nfqueue.Verdict {
		held <- p.ID
		return nfqueue.Defer
	})
	id := k.InjectBytes(nfqtest.UDP(srcAddr, dstAddr, []byte("x")))
	<-held
	if err := conn.SetVerdictBatch(id, nfqueue.Accept); !errors.Is(err, nfqueue.ErrServing) {
		t.Fatalf("SetVerdictBatch during Serve: %v, want ErrServing", err)
	}
	if err := conn.SetVerdict(id, nfqueue.Accept); err != nil {
		t.Fatal(err)
	}
}

// TestVerdictTimeoutMany lets thousands of deferred packets time out at
// once: the timeout verdicts go out in datagrams the socket accepts, and
// every packet gets one.
func TestVerdictTimeoutMany(t *testing.T) {
	const n = 10000
	k := nfqtest.New(t, 0, &nfqueue.Config{MaxQueueLen: 2 * n, VerdictTimeout: 200 * time.Millisecond, TimeoutVerdict: nfqueue.Accept})
	conn := k.Conn()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go conn.Serve(ctx, func(*nfqueue.Packet) nfqueue.Verdict { return nfqueue.Defer })
	payload := nfqtest.UDP(srcAddr, dstAddr, []byte("slow"))
	for range n {
		k.InjectBytes(payload)
	}
	vs, err := k.WaitVerdicts(n, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if v.Kind != nfqueue.KindAccept || v.Err != 0 {
			t.Fatalf("packet %d: %v (errno %v)", v.ID, v.Kind, v.Err)
		}
	}
	if s := conn.Stats(); s.Timeouts != n || s.Outstanding != 0 {
		t.Fatalf("timeouts %d, outstanding %d", s.Timeouts, s.Outstanding)
	}
}
