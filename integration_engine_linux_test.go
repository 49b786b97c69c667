package nfqueue_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nfqueue-go/nfqueue"
	"github.com/nfqueue-go/nfqueue/internal/nstest"
)

// TestIntegrationDeferred hands every packet to a pool of workers that give
// the verdicts later; every datagram arrives exactly once, and a second
// verdict for a packet is refused.
func TestIntegrationDeferred(t *testing.T) {
	const n, workers = 300, 8
	u := newUDPPath(t, false, "--queue-num", "40")
	conn := u.open(t, 40, nil)
	work := make(chan *nfqueue.Packet, n)
	var twice atomic.Int32
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
				if err := conn.SetVerdict(p.ID, nfqueue.Accept); err != nil {
					t.Errorf("SetVerdict(%d): %v", p.ID, err)
				}
				if err := conn.SetVerdict(p.ID, nfqueue.Accept); errors.Is(err, nfqueue.ErrVerdictTwice) {
					twice.Add(1)
				}
			}
		}()
	}
	stop := serve(t, conn, func(p *nfqueue.Packet) nfqueue.Verdict {
		work <- p.Clone()
		return nfqueue.Defer
	})
	for i := range n {
		u.send(t, []byte(fmt.Sprint(i)))
	}
	got := map[string]int{}
	for len(got) < n {
		b, ok := nstest.Recv(u.rx, 5*time.Second)
		if !ok {
			break
		}
		got[string(b)]++
	}
	stop()
	close(work)
	wg.Wait()
	if extra, ok := nstest.Recv(u.rx, 100*time.Millisecond); ok {
		got[string(extra)]++
	}
	for i := range n {
		if c := got[fmt.Sprint(i)]; c != 1 {
			t.Errorf("datagram %d arrived %d times", i, c)
		}
	}
	if twice.Load() != n {
		t.Errorf("%d second verdicts refused, want %d", twice.Load(), n)
	}
	if s := conn.Stats(); s.Outstanding != 0 || s.Accepted != n {
		t.Errorf("stats: outstanding %d accepted %d", s.Outstanding, s.Accepted)
	}
}

// TestIntegrationVerdictTimeout defers packets and never answers: the
// timeout verdict applies, delivering (Accept) or not (Drop).
func TestIntegrationVerdictTimeout(t *testing.T) {
	for _, tv := range []nfqueue.Verdict{nfqueue.Accept, nfqueue.Drop} {
		t.Run(tv.String(), func(t *testing.T) {
			u := newUDPPath(t, false, "--queue-num", "41")
			conn := u.open(t, 41, &nfqueue.Config{VerdictTimeout: 100 * time.Millisecond, TimeoutVerdict: tv})
			serve(t, conn, func(p *nfqueue.Packet) nfqueue.Verdict { return nfqueue.Defer })
			u.send(t, []byte("forgotten"))
			_, ok := nstest.Recv(u.rx, 2*time.Second)
			if want := tv.Kind() == nfqueue.KindAccept; ok != want {
				t.Fatalf("delivered=%v, want %v", ok, want)
			}
			deadline := time.Now().Add(2 * time.Second)
			for conn.Stats().Timeouts != 1 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if s := conn.Stats(); s.Timeouts != 1 || s.Outstanding != 0 || s.Kernel.Waiting != 0 {
				t.Fatalf("stats: timeouts %d outstanding %d waiting %d", s.Timeouts, s.Outstanding, s.Kernel.Waiting)
			}
		})
	}
}

// TestIntegrationBatchVerdict reads a burst, accepts it with one batch
// verdict carrying a mark, and checks a later rule saw the mark on every
// packet. Serve then batches a burst by itself.
func TestIntegrationBatchVerdict(t *testing.T) {
	const n = 20
	u := newUDPPath(t, false)
	port := fmt.Sprint(u.port)
	u.ns.IPTables(false, "-t", "mangle", "-A", "OUTPUT", "-p", "udp", "--dport", port, "-j", "NFQUEUE", "--queue-num", "42")
	u.ns.IPTables(false, "-A", "OUTPUT", "-p", "udp", "--dport", port, "-m", "mark", "--mark", "0x5")
	conn := u.open(t, 42, nil)
	for i := range n {
		u.send(t, []byte(fmt.Sprint(i)))
	}
	var p nfqueue.Packet
	var last uint32
	for range n {
		if err := conn.ReadPacket(&p); err != nil {
			t.Fatal(err)
		}
		last = p.ID
	}
	if err := conn.SetVerdictBatch(last, nfqueue.Accept.WithPayload(nil)); !errors.Is(err, nfqueue.ErrInvalidVerdict) {
		t.Fatalf("batch verdict with a payload: %v, want ErrInvalidVerdict", err)
	}
	if err := conn.SetVerdictBatch(last, nfqueue.Accept.WithMark(5)); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, ok := nstest.Recv(u.rx, 5*time.Second); !ok {
			t.Fatalf("datagram %d of %d missing", i, n)
		}
	}
	if c := ruleCount(t, u.ns, "filter", "OUTPUT", "mark match 0x5"); c != n {
		t.Fatalf("mark rule saw %d packets, want %d", c, n)
	}
	if err := conn.SetVerdictBatch(last, nfqueue.Accept); !errors.Is(err, nfqueue.ErrVerdictTwice) {
		t.Fatalf("repeated batch verdict: %v, want ErrVerdictTwice", err)
	}

	// A burst waiting before Serve starts is answered with batch verdicts.
	for i := range n {
		u.send(t, []byte(fmt.Sprint(i)))
	}
	time.Sleep(50 * time.Millisecond)
	serve(t, conn, func(*nfqueue.Packet) nfqueue.Verdict { return nfqueue.Accept })
	for i := range n {
		if _, ok := nstest.Recv(u.rx, 5*time.Second); !ok {
			t.Fatalf("served datagram %d of %d missing", i, n)
		}
	}
	// The counters move right after the kernel took the verdicts.
	s := conn.Stats()
	for deadline := time.Now().Add(2 * time.Second); s.Accepted < 2*n && time.Now().Before(deadline); s = conn.Stats() {
		time.Sleep(5 * time.Millisecond)
	}
	if s.BatchVerdicts < 2 || s.Accepted != 2*n {
		t.Fatalf("stats: %d batch verdicts, %d accepted", s.BatchVerdicts, s.Accepted)
	}
}

// TestIntegrationKernelVerdictError makes the kernel refuse a verdict: the
// packet's device goes down, which flushes it from the queue, and the
// verdict sent afterwards comes back with ENOENT and the packet's id.
func TestIntegrationKernelVerdictError(t *testing.T) {
	u := newUDPPath(t, false, "--queue-num", "43")
	conn := u.open(t, 43, nil)
	u.send(t, []byte("flushed"))
	var p nfqueue.Packet
	if err := conn.ReadPacket(&p); err != nil {
		t.Fatal(err)
	}
	u.ns.Run("ip", "link", "set", "lo", "down")
	if err := conn.SetVerdict(p.ID, nfqueue.Accept); err != nil {
		t.Fatalf("SetVerdict: %v", err)
	}
	err := conn.ReadPacket(&p)
	var oe *nfqueue.OpError
	if !errors.As(err, &oe) || oe.Op != "verdict" || !errors.Is(err, syscall.ENOENT) || oe.Verdict.Kind() != nfqueue.KindAccept {
		t.Fatalf("ReadPacket after a refused verdict: %v, want a verdict OpError with ENOENT", err)
	}
	if want := p.ID; oe.ID != want {
		t.Fatalf("error names packet %d, want %d", oe.ID, want)
	}
	if s := conn.Stats(); s.VerdictErrors != 1 {
		t.Fatalf("VerdictErrors = %d", s.VerdictErrors)
	}
}

// TestIntegrationFlowBypass judges the first packet of a flow only: the
// verdict marks it, a later rule saves the mark into the connmark, and a
// connmark rule before the queue rule accepts the rest of the flow.
func TestIntegrationFlowBypass(t *testing.T) {
	const n = 10
	u := newUDPPath(t, false)
	port := fmt.Sprint(u.port)
	u.ns.IPTables(false, "-A", "OUTPUT", "-m", "connmark", "--mark", "0x1/0x1", "-j", "ACCEPT")
	u.ns.IPTables(false, "-A", "OUTPUT", "-p", "udp", "--dport", port, "-j", "NFQUEUE", "--queue-num", "44")
	u.ns.IPTables(false, "-t", "mangle", "-A", "POSTROUTING", "-m", "mark", "--mark", "0x1/0x1", "-j", "CONNMARK", "--save-mark", "--mask", "0x1")
	conn := u.open(t, 44, nil)
	var judged atomic.Int32
	serve(t, conn, func(p *nfqueue.Packet) nfqueue.Verdict {
		judged.Add(1)
		return nfqueue.Accept.WithMark(1)
	})
	for i := range n {
		u.send(t, []byte(fmt.Sprint(i)))
		if _, ok := nstest.Recv(u.rx, 5*time.Second); !ok {
			t.Fatalf("datagram %d missing", i)
		}
	}
	if j := judged.Load(); j != 1 {
		t.Fatalf("handler judged %d packets of the flow, want 1", j)
	}
	if s := conn.Stats(); s.KernelErr != nil || s.Kernel.LastID != 1 {
		t.Fatalf("kernel queued %d packets (%v), want 1", s.Kernel.LastID, s.KernelErr)
	}
}

// TestIntegrationQueueBalance spreads flows from many source addresses over
// four queues with --queue-balance; every queue gets some.
func TestIntegrationQueueBalance(t *testing.T) {
	const sources = 64
	u := newUDPPath(t, false, "--queue-balance", "50:53")
	set, err := nfqueue.OpenSet(50, 4, &nfqueue.Config{NetNS: u.ns.Path}, &nfqueue.SetOptions{PinReaders: true})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	var perQueue [4]atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- set.Serve(ctx, func(p *nfqueue.Packet) nfqueue.Verdict {
			perQueue[p.Queue-50].Add(1)
			return nfqueue.Accept
		})
	}()
	for i := range sources {
		src := u.ns.ListenPacket("udp4", fmt.Sprintf("127.0.%d.%d:0", 1+i/200, 1+i%200))
		if _, err := src.WriteTo([]byte("balanced"), u.dst); err != nil {
			t.Fatal(err)
		}
	}
	for i := range sources {
		if _, ok := nstest.Recv(u.rx, 5*time.Second); !ok {
			t.Fatalf("datagram %d of %d missing", i, sources)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Set.Serve: %v", err)
	}
	total := 0
	for q := range perQueue {
		c := int(perQueue[q].Load())
		total += c
		if c == 0 {
			t.Errorf("queue %d got no packet (%v)", 50+q, &perQueue)
		}
	}
	if s := set.Stats(); total != sources || s.Received != sources || s.Accepted != sources {
		t.Errorf("served %d, stats received %d accepted %d; want %d", total, s.Received, s.Accepted, sources)
	}
	if set.Conn(52) == nil || set.Conn(52).Queue() != 52 || set.Conn(54) != nil {
		t.Error("Set.Conn does not map queue numbers")
	}
}

// TestIntegrationBridge queues packets crossing a bridge (br_netfilter):
// they name the bridge as input device and the port as physical one.
func TestIntegrationBridge(t *testing.T) {
	br := nstest.New(t)
	br.Try("modprobe", "br_netfilter") // where it is a module; fails harmlessly where built in
	a, b := nstest.New(t), nstest.New(t)
	br.Run("ip", "link", "add", "br0", "type", "bridge")
	for i, h := range []*nstest.NS{a, b} {
		port := fmt.Sprintf("port%d", i)
		br.Run("ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.Name)
		br.Run("ip", "link", "set", port, "master", "br0", "up")
		h.Run("ip", "addr", "add", fmt.Sprintf("10.199.0.%d/24", i+1), "dev", "eth0")
		h.Run("ip", "link", "set", "eth0", "up")
	}
	br.Run("ip", "link", "set", "br0", "up")
	br.Run("sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=1")
	br.IPTables(false, "-A", "FORWARD", "-p", "udp", "-j", "NFQUEUE", "--queue-num", "45")
	conn, err := nfqueue.Open(45, &nfqueue.Config{NetNS: br.Path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	got := make(chan nfqueue.Packet, 1)
	serve(t, conn, func(p *nfqueue.Packet) nfqueue.Verdict {
		select {
		case got <- *p.Clone():
		default:
		}
		return nfqueue.Accept
	})
	rx := b.ListenPacket("udp4", "10.199.0.2:9000")
	tx := a.ListenPacket("udp4", "10.199.0.1:0")
	var p nfqueue.Packet
	for i := 0; ; i++ {
		// The first datagram may wait for ARP; resend until one passes.
		tx.WriteTo([]byte("over the bridge"), &net.UDPAddr{IP: net.IPv4(10, 199, 0, 2), Port: 9000})
		if _, ok := nstest.Recv(rx, time.Second); ok {
			break
		}
		if i == 5 {
			t.Fatal("no datagram crossed the bridge")
		}
	}
	select {
	case p = <-got:
	case <-time.After(time.Second):
		t.Fatal("no packet queued")
	}
	idx := func(name string) uint32 {
		var n uint32
		fmt.Sscan(strings.TrimSpace(br.Run("cat", "/sys/class/net/"+name+"/ifindex")), &n)
		return n
	}
	if p.Hook != nfqueue.HookForward || p.InDev != idx("br0") || p.PhysInDev != idx("port0") || p.PhysOutDev != idx("port1") {
		t.Fatalf("hook %v indev %d physin %d physout %d; want forward, br0=%d port0=%d port1=%d",
			p.Hook, p.InDev, p.PhysInDev, p.PhysOutDev, idx("br0"), idx("port0"), idx("port1"))
	}
	if len(p.HwAddr) != 6 {
		t.Errorf("hardware address %v", p.HwAddr)
	}
}
