package nfqtest_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nfqueue-go/nfqueue"
	"github.com/nfqueue-go/nfqueue/nfqtest"
)

const wait = 5 * time.Second

var (
	src = netip.MustParseAddrPort("10.0.0.1:4000")
	dst = netip.MustParseAddrPort("10.0.0.2:53")
)

// udpPayload returns the UDP payload of an IPv4 or IPv6 packet.
func udpPayload(b []byte) []byte {
	switch {
	case len(b) >= 28 && b[0]>>4 == 4:
		return b[int(b[0]&0x0f)*4+8:]
	case len(b) >= 48 && b[0]>>4 == 6:
		return b[48:]
	}
	return nil
}

// policy drops datagrams that start with "drop", marks those that start
// with "mark" and accepts the rest.
func policy(p *nfqueue.Packet) nfqueue.Verdict {
	switch data := udpPayload(p.Payload); {
	case bytes.HasPrefix(data, []byte("drop")):
		return nfqueue.Drop
	case bytes.HasPrefix(data, []byte("mark")):
		return nfqueue.Accept.WithMark(7)
	}
	return nfqueue.Accept
}

// serve runs Serve in the background until the test ends, or until the
// returned function is called, and fails the test if Serve returns an
// unexpected error.
func serve(t *testing.T, conn *nfqueue.Conn, h nfqueue.Handler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := conn.Serve(ctx, h); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Serve: %v", err)
		}
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func mustVerdict(t *testing.T, k *nfqtest.Kernel, id uint32) nfqtest.Verdict {
	t.Helper()
	v, err := k.WaitVerdict(id, wait)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestServePolicy(t *testing.T) {
	k := nfqtest.New(t, 3, nil)
	serve(t, k.Conn(), policy)
	drop := k.InjectBytes(nfqtest.UDP(src, dst, []byte("drop me")))
	mark := k.InjectBytes(nfqtest.UDP(src, dst, []byte("mark me")))
	pass := k.InjectBytes(nfqtest.UDP(src, dst, []byte("let me through")))
	for _, c := range []struct {
		id   uint32
		want nfqueue.Verdict
	}{{drop, nfqueue.Drop}, {mark, nfqueue.Accept.WithMark(7)}, {pass, nfqueue.Accept}} {
		v := mustVerdict(t, k, c.id)
		if !v.Matches(c.want) || v.Queue != 3 || v.Err != 0 {
			t.Errorf("packet %d: got %v (queue %d), want %v", c.id, v, v.Queue, c.want)
		}
	}
	if p := k.Pending(); len(p) != 0 {
		t.Errorf("packets still waiting: %v", p)
	}
}

func TestConfigRecorded(t *testing.T) {
	k := nfqtest.New(t, 9, &nfqueue.Config{
		CopyMode: nfqueue.CopyPacket, CopyRange: 128, MaxQueueLen: 100,
		FailOpen: true, UIDGID: true, DisableGSO: true,
	})
	got := k.Config()
	want := nfqtest.QueueConfig{Queue: 9, Bound: true, CopyMode: nfqueue.CopyPacket, CopyRange: 128,
		MaxQueueLen: 100, Flags: 1<<0 | 1<<3, FailOpen: true, UIDGID: true}
	if got != want {
		t.Errorf("config\n got %+v\nwant %+v", got, want)
	}

	k2 := nfqtest.New(t, 1, &nfqueue.Config{CopyMode: nfqueue.CopyMeta})
	if c := k2.Config(); c.CopyMode != nfqueue.CopyMeta || c.CopyRange != 0 || !c.GSO || c.MaxQueueLen != 1024 {
		t.Errorf("meta config: %+v", c)
	}
}

// TestBatching checks that Serve answers a burst of packets with one
// VERDICT_BATCH, unless batching is disabled.
func TestBatching(t *testing.T) {
	for _, disable := range []bool{false, true} {
		t.Run(map[bool]string{false: "batching", true: "disabled"}[disable], func(t *testing.T) {
			k := nfqtest.New(t, 0, &nfqueue.Config{DisableBatching: disable})
			var ids []uint32
			for range 5 {
				ids = append(ids, k.InjectBytes(nfqtest.UDP(src, dst, []byte("mark"))))
			}
			// The five packets wait in the socket before Serve starts, so
			// it reads them in one burst.
			stop := serve(t, k.Conn(), policy)
			got, err := k.WaitVerdicts(5, wait)
			stop() // Serve counts its verdicts after sending them
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range got {
				if v.ID != ids[i] || !v.Matches(nfqueue.Accept.WithMark(7)) || v.Batch == disable {
					t.Errorf("verdict %d: %v, want packet %d accepted with mark 7, batch %v", i, v, ids[i], !disable)
				}
			}
			if st := k.Conn().Stats(); st.Accepted != 5 || (st.BatchVerdicts == 1) == disable {
				t.Errorf("stats: %d accepted, %d batch verdicts", st.Accepted, st.BatchVerdicts)
			}
		})
	}
}

// TestDeferred gives some verdicts later from other goroutines, mixed with
// verdicts the handler gives at once, and checks that each packet gets
// exactly one verdict: the batches Serve sends must not cover deferred
// packets.
func TestDeferred(t *testing.T) {
	var errs []error
	var mu sync.Mutex
	k := nfqtest.New(t, 0, &nfqueue.Config{OnError: func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}})
	conn := k.Conn()
	later := make(chan *nfqueue.Packet, 100)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range later {
				time.Sleep(time.Millisecond)
				if err := conn.SetVerdict(p.ID, nfqueue.Accept.WithMark(9)); err != nil {
					t.Errorf("SetVerdict(%d): %v", p.ID, err)
				}
			}
		}()
	}
	stop := serve(t, conn, func(p *nfqueue.Packet) nfqueue.Verdict {
		if bytes.HasPrefix(udpPayload(p.Payload), []byte("later")) {
			later <- p.Clone()
			return nfqueue.Defer
		}
		return nfqueue.Accept
	})
	deferred := map[uint32]bool{}
	const n = 60
	for i := range n {
		data := []byte("now")
		if i%3 == 0 {
			data = []byte("later")
		}
		id := k.InjectBytes(nfqtest.UDP(src, dst, data))
		deferred[id] = i%3 == 0
	}
	got, err := k.WaitVerdicts(n, wait)
	stop()
	close(later)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint32]int{}
	for _, v := range got {
		seen[v.ID]++
		want := nfqueue.Accept
		if deferred[v.ID] {
			want = nfqueue.Accept.WithMark(9)
		}
		if !v.Matches(want) || (deferred[v.ID] && v.Batch) {
			t.Errorf("%v, want %v", v, want)
		}
	}
	for id := range deferred {
		if seen[id] != 1 {
			t.Errorf("packet %d got %d verdicts", id, seen[id])
		}
	}
	if p := k.Pending(); len(p) != 0 {
		t.Errorf("packets still waiting: %v", p)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, err := range errs {
		t.Errorf("OnError: %v", err)
	}
}

// TestVerdictError checks that an error the kernel returns for a verdict
// reaches Config.OnError tied to its packet.
func TestVerdictError(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOENT, syscall.EPERM, syscall.EINVAL} {
		t.Run(errno.Error(), func(t *testing.T) {
			errc := make(chan error, 10)
			k := nfqtest.New(t, 2, &nfqueue.Config{OnError: func(err error) { errc <- err }})
			serve(t, k.Conn(), policy)
			ok := k.InjectBytes(nfqtest.UDP(src, dst, []byte("fine")))
			mustVerdict(t, k, ok)
			// An id chosen in advance, so the failure is set before the
			// handler can answer.
			id := uint32(100)
			k.FailVerdict(id, errno)
			k.Inject(nfqueue.Packet{ID: id, Payload: nfqtest.UDP(src, dst, []byte("mark"))})
			v := mustVerdict(t, k, id)
			if v.Err != errno {
				t.Errorf("recorded %v, want error %v", v, errno)
			}
			select {
			case err := <-errc:
				var oe *nfqueue.OpError
				if !errors.As(err, &oe) || oe.ID != id || oe.Op != "verdict" || oe.Queue != 2 || !errors.Is(err, errno) {
					t.Errorf("OnError(%v): want an *OpError for verdict of packet %d matching %v", err, id, errno)
				}
			case <-time.After(wait):
				t.Fatal("OnError not called")
			}
			// OnError ran after Serve counted the error.
			if st := k.Conn().Stats(); st.VerdictErrors != 1 {
				t.Errorf("%d verdict errors counted, want 1", st.VerdictErrors)
			}
			// The refused packet still waits, as in the kernel.
			if p := k.Pending(); len(p) != 1 || p[0] != id {
				t.Errorf("waiting %v, want [%d]", p, id)
			}
		})
	}
}

// TestReadPacket drives the pull API: ReadPacket, then SetVerdict, whose
// verdict the Kernel shows at once, and the checks that stop a second
// verdict before it reaches the kernel.
func TestReadPacket(t *testing.T) {
	k := nfqtest.New(t, 0, nil)
	conn := k.Conn()
	id := k.Inject(nfqueue.Packet{Payload: nfqtest.UDP(src, dst, []byte("x")), Mark: 5, Hook: nfqueue.HookOutput, OutDev: 1})
	var p nfqueue.Packet
	if err := conn.ReadPacket(&p); err != nil {
		t.Fatal(err)
	}
	if p.ID != id || p.Mark != 5 || p.Hook != nfqueue.HookOutput || p.OutDev != 1 || p.Has(nfqueue.AttrInDev) {
		t.Errorf("packet %+v", p)
	}
	if err := conn.SetVerdict(id, nfqueue.Repeat.WithMark(1)); err != nil {
		t.Fatal(err)
	}
	// SetVerdict has returned: the Kernel sees the verdict at once.
	if v := k.Verdicts(); len(v) != 1 || !v[0].Matches(nfqueue.Repeat.WithMark(1)) || v[0].Batch {
		t.Errorf("verdicts %v", v)
	}
	if err := conn.SetVerdict(id, nfqueue.Accept); !errors.Is(err, nfqueue.ErrVerdictTwice) {
		t.Errorf("second verdict: %v, want ErrVerdictTwice", err)
	}
	if err := conn.SetVerdict(id+100, nfqueue.Accept); !errors.Is(err, nfqueue.ErrUnknownPacket) {
		t.Errorf("verdict for an unknown packet: %v, want ErrUnknownPacket", err)
	}
	if n := len(k.Verdicts()); n != 1 {
		t.Errorf("%d verdicts reached the kernel, want 1", n)
	}

	// A kernel error for a verdict comes back through the next ReadPacket,
	// with the packet id; reading goes on after it.
	id = k.InjectBytes(nfqtest.UDP(src, dst, []byte("y")))
	k.FailVerdict(id, syscall.ENOENT)
	if err := conn.ReadPacket(&p); err != nil {
		t.Fatal(err)
	}
	if err := conn.SetVerdict(id, nfqueue.Accept); err != nil {
		t.Fatal(err)
	}
	next := k.InjectBytes(nfqtest.UDP(src, dst, []byte("z")))
	err := conn.ReadPacket(&p)
	var oe *nfqueue.OpError
	if !errors.As(err, &oe) || oe.ID != id || !errors.Is(err, syscall.ENOENT) {
		t.Errorf("ReadPacket after a refused verdict: %v", err)
	}
	if err := conn.ReadPacket(&p); err != nil || p.ID != next {
		t.Errorf("ReadPacket after the error: packet %d, %v; want packet %d", p.ID, err, next)
	}
}

// TestVerdictOptions sends every verdict option and checks that each
// reaches the kernel as sent.
func TestVerdictOptions(t *testing.T) {
	labels, mask := [16]byte{1, 2, 3}, [16]byte{0xff, 0xff, 0xff}
	repl := nfqtest.UDP(src, dst, []byte("rewritten"))
	cases := []nfqueue.Verdict{
		nfqueue.Accept.WithMark(1).WithConnMark(2).WithPriority(3).WithCtLabels(labels, mask),
		nfqueue.Accept.WithPayload(repl),
		nfqueue.QueueTo(12).WithBypass(),
		nfqueue.QueueTo(65535),
		nfqueue.Stop,
		nfqueue.Drop.WithMark(0),
		nfqueue.Accept.WithVLAN(nfqueue.VLAN{Proto: 0x8100, TCI: 42}).WithL2Header(make([]byte, 14)),
	}
	k := nfqtest.New(t, 0, nil)
	conn := k.Conn()
	for _, want := range cases {
		id := k.InjectBytes(nfqtest.UDP(src, dst, []byte("x")))
		var p nfqueue.Packet
		if err := conn.ReadPacket(&p); err != nil {
			t.Fatal(err)
		}
		if err := conn.SetVerdict(id, want); err != nil {
			t.Fatalf("SetVerdict(%v): %v", want, err)
		}
		v := mustVerdict(t, k, id)
		if !v.Matches(want) {
			t.Errorf("got %v, want %v", v, want)
		}
	}
	v := mustVerdict(t, k, 3)
	if v.Target != 12 || !v.Bypass || v.Kind != nfqueue.KindQueue {
		t.Errorf("queue verdict decoded as %+v", v)
	}
	if v := mustVerdict(t, k, 2); !bytes.Equal(v.Payload, repl) {
		t.Errorf("payload % x, want % x", v.Payload, repl)
	}
}

// TestBindErrors checks that Open reports a refused bind as the kernel's
// error.
func TestBindErrors(t *testing.T) {
	k := nfqtest.NewKernel(t)
	k.FailBind(syscall.EPERM)
	if _, err := k.Open(4, nil); !errors.Is(err, syscall.EPERM) {
		t.Errorf("Open with EPERM: %v", err)
	}
	k.FailBind(syscall.EOPNOTSUPP)
	_, err := k.Open(4, &nfqueue.Config{Conntrack: true})
	if !errors.Is(err, nfqueue.ErrNotSupported) || !errors.Is(err, syscall.EOPNOTSUPP) {
		t.Errorf("Open with EOPNOTSUPP: %v", err)
	}
	if k.Config().Bound {
		t.Error("queue bound after failed binds")
	}
	k.FailBind(0)
	if _, err := k.Open(4, nil); err != nil {
		t.Fatalf("Open after FailBind(0): %v", err)
	}
	// A second socket cannot take the queue while the first owns it.
	if _, err := k.Open(4, nil); !errors.Is(err, syscall.EPERM) {
		t.Errorf("second Open: %v, want EPERM", err)
	}
	if _, err := k.Open(4, &nfqueue.Config{CopyMode: nfqueue.CopyNone}); !errors.Is(err, nfqueue.ErrInvalidConfig) {
		t.Errorf("Open with CopyNone: %v", err)
	}
}

// TestReopen checks that a queue closed by one Conn can be bound at once
// by the next, as with the kernel, which handles the unbind synchronously.
func TestReopen(t *testing.T) {
	k := nfqtest.NewKernel(t)
	for i := range 20 {
		conn, err := k.Open(6, &nfqueue.Config{MaxQueueLen: uint32(10 + i)})
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		if c := k.Config(); !c.Bound || c.MaxQueueLen != uint32(10+i) {
			t.Fatalf("config %d: %+v", i, c)
		}
		id := k.InjectBytes(nfqtest.UDP(src, dst, nil))
		if id != 1 {
			t.Errorf("first id after bind %d: %d", i, id)
		}
		if err := conn.Close(); err != nil {
			t.Fatal(err)
		}
		if k.Config().Bound {
			t.Fatal("queue still bound after Close")
		}
	}
}

func TestCloseUnblocksServe(t *testing.T) {
	k := nfqtest.New(t, 0, nil)
	conn := k.Conn()
	done := make(chan error, 1)
	go func() { done <- conn.Serve(context.Background(), policy) }()
	id := k.InjectBytes(nfqtest.UDP(src, dst, nil))
	mustVerdict(t, k, id)
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after Close: %v, want nil", err)
		}
	case <-time.After(wait):
		t.Fatal("Serve still running after Close")
	}
	if err := conn.SetVerdict(1, nfqueue.Accept); !errors.Is(err, nfqueue.ErrClosed) || !errors.Is(err, net.ErrClosed) {
		t.Errorf("SetVerdict after Close: %v", err)
	}
	if k.Config().Bound {
		t.Error("queue still bound after Close")
	}
}

func TestCancelServe(t *testing.T) {
	k := nfqtest.New(t, 0, nil)
	conn := k.Conn()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- conn.Serve(ctx, policy) }()
	mustVerdict(t, k, k.InjectBytes(nfqtest.UDP(src, dst, nil)))
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Serve after cancel: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Serve still running after cancel")
	}
	// The Conn stays open: serve again.
	serve(t, conn, policy)
	mustVerdict(t, k, k.InjectBytes(nfqtest.UDP(src, dst, nil)))
}

// TestMetadata checks that the packet attributes the Kernel sends arrive
// in the handler's Packet.
func TestMetadata(t *testing.T) {
	k := nfqtest.New(t, 0, &nfqueue.Config{UIDGID: true})
	conn := k.Conn()
	ts := time.Unix(1700000000, 123456000)
	payload := nfqtest.UDP(netip.MustParseAddrPort("[2001:db8::1]:1"), netip.MustParseAddrPort("[2001:db8::2]:2"), []byte("v6"))
	in := nfqueue.Packet{
		Hook: nfqueue.HookInput, Mark: 0xabc, Timestamp: ts, InDev: 3, PhysInDev: 4,
		HwAddr: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Payload: payload, SkbInfo: nfqueue.SkbCsumNotVerified,
		UID: 0, GID: 100, Priority: 6, CgroupClassID: 0x10001,
		Present: nfqueue.AttrSet(1 << nfqueue.AttrUID),
	}
	id := k.Inject(in)
	var p nfqueue.Packet
	if err := conn.ReadPacket(&p); err != nil {
		t.Fatal(err)
	}
	if p.ID != id || p.Family != nfqueue.FamilyIPv6 || p.HwProtocol != 0x86dd || p.Hook != nfqueue.HookInput ||
		p.Mark != 0xabc || !p.Timestamp.Equal(ts) || p.InDev != 3 || p.PhysInDev != 4 ||
		p.HwAddr.String() != "02:00:00:00:00:01" || !bytes.Equal(p.Payload, payload) ||
		!p.SkbInfo.ChecksumNotVerified() || !p.Has(nfqueue.AttrUID) || p.UID != 0 || p.GID != 100 ||
		p.Priority != 6 || p.CgroupClassID != 0x10001 || p.Has(nfqueue.AttrOutDev) || p.Truncated() {
		t.Errorf("packet %+v", p)
	}
	if err := conn.SetVerdict(id, nfqueue.Accept); err != nil {
		t.Fatal(err)
	}

	// Without Config.UIDGID the kernel sends no UID.
	k2 := nfqtest.New(t, 0, nil)
	k2.Inject(nfqueue.Packet{Payload: payload, UID: 1000})
	if err := k2.Conn().ReadPacket(&p); err != nil {
		t.Fatal(err)
	}
	if p.Has(nfqueue.AttrUID) {
		t.Error("UID sent without Config.UIDGID")
	}
}

// TestTruncated checks the copy range and the refusal of a replacement
// payload for a truncated packet.
func TestTruncated(t *testing.T) {
	errc := make(chan error, 1)
	k := nfqtest.New(t, 0, &nfqueue.Config{CopyRange: 100, OnError: func(err error) { errc <- err }})
	seen := make(chan *nfqueue.Packet, 1)
	serve(t, k.Conn(), func(p *nfqueue.Packet) nfqueue.Verdict {
		seen <- p.Clone()
		return nfqueue.Accept.WithPayload(p.Payload)
	})
	id := k.InjectBytes(nfqtest.UDP(src, dst, make([]byte, 300)))
	v := mustVerdict(t, k, id)
	if !v.Matches(nfqueue.Drop) {
		t.Errorf("verdict %v, want drop", v)
	}
	got := <-seen
	if !got.Truncated() || len(got.Payload) != 100 || got.CapLen != 328 || got.OrigLen() != 328 {
		t.Errorf("packet: truncated %v, %d bytes, caplen %d", got.Truncated(), len(got.Payload), got.CapLen)
	}
	select {
	case err := <-errc:
		var oe *nfqueue.OpError
		if !errors.Is(err, nfqueue.ErrInvalidVerdict) || !errors.As(err, &oe) || oe.ID != id {
			t.Errorf("OnError(%v)", err)
		}
	case <-time.After(wait):
		t.Fatal("no error for a payload on a truncated packet")
	}

	// Through the pull API the refused verdict keeps the packet, which can
	// still be given a valid one.
	k3 := nfqtest.New(t, 0, &nfqueue.Config{CopyRange: 64})
	id = k3.InjectBytes(nfqtest.UDP(src, dst, make([]byte, 300)))
	var p nfqueue.Packet
	if err := k3.Conn().ReadPacket(&p); err != nil {
		t.Fatal(err)
	}
	if err := k3.Conn().SetVerdict(id, nfqueue.Accept.WithPayload(p.Payload)); !errors.Is(err, nfqueue.ErrInvalidVerdict) {
		t.Errorf("payload for a truncated packet: %v", err)
	}
	if err := k3.Conn().SetVerdict(id, nfqueue.Accept); err != nil {
		t.Errorf("verdict after the refused one: %v", err)
	}
	if v := k3.Verdicts(); len(v) != 1 || !v[0].Matches(nfqueue.Accept) {
		t.Errorf("verdicts %v", v)
	}

	// With CopyMeta no payload is sent.
	k2 := nfqtest.New(t, 0, &nfqueue.Config{CopyMode: nfqueue.CopyMeta})
	k2.InjectBytes(nfqtest.UDP(src, dst, []byte("x")))
	if err := k2.Conn().ReadPacket(&p); err != nil {
		t.Fatal(err)
	}
	if p.Payload != nil || p.Has(nfqueue.AttrPayload) || p.Truncated() {
		t.Errorf("meta packet has payload %q", p.Payload)
	}
}

// TestMalformed checks that a message the Conn cannot decode is reported
// and skipped.
func TestMalformed(t *testing.T) {
	errc := make(chan error, 10)
	k := nfqtest.New(t, 0, &nfqueue.Config{OnError: func(err error) { errc <- err }})
	serve(t, k.Conn(), policy)
	// A PACKET message without its packet header.
	bad := []byte{20, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0}
	if err := k.SendRaw(bad); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, nfqueue.ErrMalformed) {
			t.Errorf("OnError(%v), want ErrMalformed", err)
		}
	case <-time.After(wait):
		t.Fatal("no error for a malformed message")
	}
	mustVerdict(t, k, k.InjectBytes(nfqtest.UDP(src, dst, nil)))
}

func TestUDP(t *testing.T) {
	for _, c := range []struct{ src, dst string }{
		{"192.0.2.1:1000", "198.51.100.7:53"},
		{"[2001:db8::1]:1000", "[2001:db8::53]:53"},
	} {
		s, d := netip.MustParseAddrPort(c.src), netip.MustParseAddrPort(c.dst)
		b := nfqtest.UDP(s, d, []byte("hello, odd"))
		if !bytes.Equal(udpPayload(b), []byte("hello, odd")) {
			t.Errorf("%s: payload of % x", c.src, b)
		}
		// A correct checksum sums to all ones over the pseudo-header and
		// the datagram (and, for IPv4, over the IP header).
		var pseudo []byte
		var udp []byte
		if s.Addr().Is4() {
			if ones(b[:20]) != 0xffff {
				t.Errorf("IPv4 header checksum wrong: % x", b[:20])
			}
			pseudo, udp = append(pseudo, b[12:20]...), b[20:]
		} else {
			pseudo, udp = append(pseudo, b[8:40]...), b[40:]
		}
		pseudo = append(pseudo, 0, 17, byte(len(udp)>>8), byte(len(udp)))
		if ones(append(pseudo, udp...)) != 0xffff {
			t.Errorf("%s: UDP checksum wrong: % x", c.src, b)
		}
	}
}

func ones(b []byte) uint16 {
	var acc uint32
	for i := 0; i+1 < len(b); i += 2 {
		acc += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		acc += uint32(b[len(b)-1]) << 8
	}
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return uint16(acc)
}
