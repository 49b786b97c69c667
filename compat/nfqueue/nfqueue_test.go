package nfqueue_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	nfq "github.com/nfqueue-go/nfqueue"
	"github.com/nfqueue-go/nfqueue/compat/nfqueue"
	"github.com/nfqueue-go/nfqueue/nfqtest"
)

const wait = 5 * time.Second

var (
	src = netip.MustParseAddrPort("10.0.0.1:4000")
	dst = netip.MustParseAddrPort("10.0.0.2:53")
)

// syncBuffer is a bytes.Buffer for a callback's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeQueue returns a Queue that opens its queues on a fake kernel.
func fakeQueue(t *testing.T) (*nfqueue.Queue, *nfqtest.Kernel) {
	t.Helper()
	k := nfqtest.NewKernel(t)
	q := new(nfqueue.Queue)
	nfqueue.SetOpen(q, k.Open)
	t.Cleanup(q.Close)
	return q, k
}

// setUp runs the calls of nfqueue-go's examples up to CreateQueue.
func setUp(t *testing.T, q *nfqueue.Queue, cb nfqueue.Callback, num int) {
	t.Helper()
	if err := q.SetCallback(cb); err != nil {
		t.Fatal(err)
	}
	if err := q.Init(); err != nil {
		t.Fatal(err)
	}
	if err := q.Unbind(syscall.AF_INET); err != nil {
		t.Fatal(err)
	}
	if err := q.Bind(syscall.AF_INET); err != nil {
		t.Fatal(err)
	}
	if err := q.CreateQueue(num); err != nil {
		t.Fatal(err)
	}
}

// loop runs q.Loop in the background; the returned function stops it and
// checks that it returned nil.
func loop(t *testing.T, q *nfqueue.Queue) (stop func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- q.Loop() }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			q.StopLoop()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Loop: %v", err)
				}
			case <-time.After(wait):
				t.Error("Loop still running after StopLoop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func mustVerdict(t *testing.T, k *nfqtest.Kernel, id uint32, want nfq.Verdict) {
	t.Helper()
	v, err := k.WaitVerdict(id, wait)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Matches(want) {
		t.Errorf("got %v, want %v", v, want)
	}
}

// TestAcceptAll runs the minimal consumer of the package example against
// the fake kernel.
func TestAcceptAll(t *testing.T) {
	q, k := fakeQueue(t)
	var out syncBuffer
	setUp(t, q, printAndAccept(&out), 0)
	if err := q.SetMode(nfqueue.NFQNL_COPY_PACKET); err != nil {
		t.Fatal(err)
	}
	if c := k.Config(); !c.Bound || c.Queue != 0 || c.CopyMode != nfq.CopyPacket || c.GSO {
		t.Errorf("queue config %+v: want bound, copying packets, without GSO", c)
	}
	stop := loop(t, q)
	first := k.Inject(nfq.Packet{Payload: nfqtest.UDP(src, dst, []byte("one")), Mark: 5, InDev: 2, Hook: nfq.HookInput})
	second := k.Inject(nfq.Packet{Payload: nfqtest.UDP(src, dst, []byte("two")), OutDev: 3, PhysOutDev: 4})
	mustVerdict(t, k, first, nfq.Accept)
	mustVerdict(t, k, second, nfq.Accept)
	stop()
	got := out.String()
	for _, want := range []string{
		"packet 1\n  mark 5\n  interfaces: in 2, out 0\n  bridge ports: in 0, out 0\n00000000  45 00 00 1f",
		"packet 2\n  mark 0\n  interfaces: in 0, out 3\n  bridge ports: in 0, out 4\n",
		"two|\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "verdict:") {
		t.Errorf("verdict error:\n%s", got)
	}
	if err := q.DestroyQueue(); err != nil {
		t.Fatal(err)
	}
	if k.Config().Bound {
		t.Error("queue still bound after DestroyQueue")
	}
	if err := q.DestroyQueue(); !errors.Is(err, nfqueue.ErrNotInitialized) {
		t.Errorf("second DestroyQueue: %v", err)
	}
}

// tcp4 returns an IPv4 packet with a bare TCP header from sport to dport.
func tcp4(sport, dport uint16) []byte {
	b := make([]byte, 40)
	b[0], b[8], b[9] = 0x45, 64, syscall.IPPROTO_TCP
	binary.BigEndian.PutUint16(b[2:4], 40)
	copy(b[12:16], []byte{192, 0, 2, 1})
	copy(b[16:20], []byte{192, 0, 2, 2})
	binary.BigEndian.PutUint16(b[20:22], sport)
	binary.BigEndian.PutUint16(b[22:24], dport)
	b[32] = 5 << 4
	return b
}

// TestDecode runs the decoding consumer of the package example against the
// fake kernel.
func TestDecode(t *testing.T) {
	q, k := fakeQueue(t)
	var out syncBuffer
	setUp(t, q, decodeAndAccept(&out), 7)
	stop := loop(t, q)
	ids := []uint32{
		k.InjectBytes(tcp4(40000, 80)),
		k.InjectBytes(nfqtest.UDP(src, dst, []byte("query"))),
		k.InjectBytes(nfqtest.UDP(netip.MustParseAddrPort("[::1]:1"), netip.MustParseAddrPort("[::1]:2"), nil)),
	}
	for _, id := range ids {
		mustVerdict(t, k, id, nfq.Accept)
	}
	stop()
	want := "packet 1: IPv4 192.0.2.1 -> 192.0.2.2, ttl 64, 40 bytes, TCP port 40000 -> 80\n" +
		"packet 2: IPv4 10.0.0.1 -> 10.0.0.2, ttl 64, 33 bytes, UDP port 4000 -> 53, 5 bytes of data\n" +
		"packet 3: not IPv4\n"
	if got := out.String(); got != want {
		t.Errorf("output\n%s\nwant\n%s", got, want)
	}
}

// TestVerdicts checks each verdict method and value.
func TestVerdicts(t *testing.T) {
	repl := nfqtest.UDP(src, dst, []byte("rewritten"))
	cases := []struct {
		name string
		give func(p *nfqueue.Payload) error
		want nfq.Verdict
	}{
		{"drop", func(p *nfqueue.Payload) error { return p.SetVerdict(nfqueue.NF_DROP) }, nfq.Drop},
		{"repeat", func(p *nfqueue.Payload) error { return p.SetVerdict(nfqueue.NF_REPEAT) }, nfq.Repeat},
		{"stop", func(p *nfqueue.Payload) error { return p.SetVerdict(nfqueue.NF_STOP) }, nfq.Stop},
		{"queue", func(p *nfqueue.Payload) error { return p.SetVerdict(nfqueue.NF_QUEUE) }, nfq.QueueTo(0)},
		{"queue 9 bypass", func(p *nfqueue.Payload) error { return p.SetVerdict(nfqueue.NF_QUEUE | 9<<16 | 0x8000) },
			nfq.QueueTo(9).WithBypass()},
		{"mark", func(p *nfqueue.Payload) error { return p.SetVerdictMark(nfqueue.NF_ACCEPT, 0xfeed) }, nfq.Accept.WithMark(0xfeed)},
		{"modified", func(p *nfqueue.Payload) error { return p.SetVerdictModified(nfqueue.NF_ACCEPT, repl) }, nfq.Accept.WithPayload(repl)},
		{"mark modified", func(p *nfqueue.Payload) error { return p.SetVerdictMarkModified(nfqueue.NF_REPEAT, 3, repl) },
			nfq.Repeat.WithMark(3).WithPayload(repl)},
	}
	q, k := fakeQueue(t)
	var mu sync.Mutex
	var errs []string
	byData := map[string]func(p *nfqueue.Payload) error{}
	for _, c := range cases {
		byData[c.name] = c.give
	}
	setUp(t, q, func(p *nfqueue.Payload) int {
		name := string(p.Data[28:])
		if err := byData[name](p); err != nil {
			mu.Lock()
			errs = append(errs, name+": "+err.Error())
			mu.Unlock()
		}
		// A second verdict is refused.
		if err := p.SetVerdict(nfqueue.NF_ACCEPT); !errors.Is(err, nfq.ErrVerdictTwice) || !errors.Is(err, nfqueue.ErrRuntime) {
			mu.Lock()
			errs = append(errs, name+": second verdict: "+errString(err))
			mu.Unlock()
		}
		return 0
	}, 1)
	loop(t, q)
	for _, c := range cases {
		id := k.InjectBytes(nfqtest.UDP(src, dst, []byte(c.name)))
		mustVerdict(t, k, id, c.want)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, e := range errs {
		t.Error(e)
	}
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

func TestInvalidVerdict(t *testing.T) {
	var p nfqueue.Payload
	for _, v := range []int{2, 6, 0x100 | 7} {
		if err := p.SetVerdict(v); !errors.Is(err, nfq.ErrInvalidVerdict) || !errors.Is(err, nfqueue.ErrRuntime) {
			t.Errorf("SetVerdict(%#x): %v", v, err)
		}
	}
	// A Payload that did not come from a Queue has nowhere to go.
	if err := p.SetVerdict(nfqueue.NF_ACCEPT); !errors.Is(err, nfqueue.ErrNotInitialized) {
		t.Errorf("SetVerdict on a zero Payload: %v", err)
	}
}

// TestLaterVerdict gives verdicts from another goroutine after the callback
// returned, and leaves one packet without a verdict, which keeps waiting.
func TestLaterVerdict(t *testing.T) {
	q, k := fakeQueue(t)
	kept := make(chan *nfqueue.Payload, 10)
	setUp(t, q, func(p *nfqueue.Payload) int {
		kept <- p
		return nfqueue.NF_ACCEPT // ignored, as in nfqueue-go
	}, 2)
	loop(t, q)
	a := k.InjectBytes(nfqtest.UDP(src, dst, []byte("a")))
	b := k.InjectBytes(nfqtest.UDP(src, dst, []byte("b")))
	pa, pb := <-kept, <-kept
	if pa.Id != a || pb.Id != b || string(pa.Data[28:]) != "a" {
		t.Fatalf("payloads %d %q, %d", pa.Id, pa.Data, pb.Id)
	}
	done := make(chan error)
	go func() { done <- pa.SetVerdictMark(nfqueue.NF_ACCEPT, 1) }()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v := k.Verdicts(); len(v) != 1 || v[0].ID != a || !v[0].Matches(nfq.Accept.WithMark(1)) {
		t.Errorf("verdicts %v", v)
	}
	if p := k.Pending(); len(p) != 1 || p[0] != b {
		t.Errorf("waiting %v, want [%d]", p, b)
	}
	if err := pa.SetVerdict(nfqueue.NF_DROP); !errors.Is(err, nfq.ErrVerdictTwice) {
		t.Errorf("second verdict: %v", err)
	}
}

// TestReconfigure changes the copy mode and queue length after CreateQueue,
// also while Loop runs, which goes on with the new settings.
func TestReconfigure(t *testing.T) {
	q, k := fakeQueue(t)
	data := make(chan []byte, 10)
	setUp(t, q, func(p *nfqueue.Payload) int {
		data <- p.Data
		p.SetVerdict(nfqueue.NF_ACCEPT)
		return 0
	}, 4)
	if err := q.SetQueueMaxLen(50); err != nil {
		t.Fatal(err)
	}
	if c := k.Config(); c.MaxQueueLen != 50 || c.CopyMode != nfq.CopyPacket {
		t.Errorf("config %+v", c)
	}
	stop := loop(t, q)
	mustVerdict(t, k, k.InjectBytes(nfqtest.UDP(src, dst, []byte("x"))), nfq.Accept)
	if d := <-data; len(d) != 29 {
		t.Errorf("packet data of %d bytes, want 29", len(d))
	}
	if err := q.SetMode(nfqueue.NFQNL_COPY_META); err != nil {
		t.Fatal(err)
	}
	if c := k.Config(); !c.Bound || c.MaxQueueLen != 50 || c.CopyMode != nfq.CopyMeta {
		t.Errorf("config after SetMode %+v", c)
	}
	mustVerdict(t, k, k.InjectBytes(nfqtest.UDP(src, dst, []byte("x"))), nfq.Accept)
	if d := <-data; d != nil {
		t.Errorf("packet data %q in meta mode", d)
	}
	// Setting the same mode again changes nothing.
	if err := q.SetMode(nfqueue.NFQNL_COPY_META); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []uint8{nfqueue.NFQNL_COPY_NONE, 3} {
		if err := q.SetMode(mode); !errors.Is(err, nfq.ErrInvalidConfig) || !errors.Is(err, nfqueue.ErrRuntime) {
			t.Errorf("SetMode(%d): %v", mode, err)
		}
	}
	if c := k.Config(); !c.Bound || c.CopyMode != nfq.CopyMeta {
		t.Errorf("config after refused SetMode %+v", c)
	}
	stop()
}

// TestOrder checks the calls that need others first.
func TestOrder(t *testing.T) {
	q, _ := fakeQueue(t)
	cb := func(p *nfqueue.Payload) int { return 0 }
	for name, f := range map[string]func() error{
		"Bind":           func() error { return q.Bind(syscall.AF_INET) },
		"Unbind":         func() error { return q.Unbind(syscall.AF_INET6) },
		"CreateQueue":    func() error { return q.CreateQueue(0) },
		"SetMode":        func() error { return q.SetMode(nfqueue.NFQNL_COPY_PACKET) },
		"SetQueueMaxLen": func() error { return q.SetQueueMaxLen(10) },
		"Loop":           q.Loop,
		"DestroyQueue":   q.DestroyQueue,
	} {
		if err := f(); !errors.Is(err, nfqueue.ErrNotInitialized) {
			t.Errorf("%s before Init: %v", name, err)
		}
	}
	q.StopLoop() // no Loop: nothing happens
	if err := q.Init(); err != nil {
		t.Fatal(err)
	}
	if err := q.CreateQueue(0); !errors.Is(err, nfqueue.ErrNotInitialized) {
		t.Errorf("CreateQueue without a callback: %v", err)
	}
	q.SetCallback(cb)
	for _, n := range []int{-1, 65536} {
		if err := q.CreateQueue(n); !errors.Is(err, nfqueue.ErrRuntime) {
			t.Errorf("CreateQueue(%d): %v", n, err)
		}
	}
	if err := q.Loop(); !errors.Is(err, nfqueue.ErrNotInitialized) {
		t.Errorf("Loop before CreateQueue: %v", err)
	}
	if err := q.CreateQueue(65535); err != nil {
		t.Fatal(err)
	}
	if err := q.CreateQueue(1); !errors.Is(err, nfqueue.ErrRuntime) {
		t.Errorf("second CreateQueue: %v", err)
	}
	q.Close()
	if err := q.Bind(syscall.AF_INET); !errors.Is(err, nfqueue.ErrNotInitialized) {
		t.Errorf("Bind after Close: %v", err)
	}
}

// TestBindRefused checks that a refusal by the kernel comes out of
// CreateQueue.
func TestBindRefused(t *testing.T) {
	q, k := fakeQueue(t)
	k.FailBind(syscall.EPERM)
	q.SetCallback(func(p *nfqueue.Payload) int { return 0 })
	q.Init()
	err := q.CreateQueue(0)
	if !errors.Is(err, nfqueue.ErrRuntime) || !errors.Is(err, syscall.EPERM) {
		t.Errorf("CreateQueue: %v, want ErrRuntime and EPERM", err)
	}
	k.FailBind(0)
	if err := q.CreateQueue(0); err != nil {
		t.Errorf("CreateQueue after the refusal: %v", err)
	}
}

// TestEnds checks that DestroyQueue and Close end a running Loop.
func TestEnds(t *testing.T) {
	for _, end := range []string{"DestroyQueue", "Close"} {
		t.Run(end, func(t *testing.T) {
			q, k := fakeQueue(t)
			setUp(t, q, func(p *nfqueue.Payload) int { p.SetVerdict(nfqueue.NF_ACCEPT); return 0 }, 0)
			done := make(chan error, 1)
			go func() { done <- q.Loop() }()
			mustVerdict(t, k, k.InjectBytes(nfqtest.UDP(src, dst, nil)), nfq.Accept)
			if err := q.Loop(); !errors.Is(err, nfqueue.ErrRuntime) {
				t.Errorf("second Loop: %v", err)
			}
			if end == "Close" {
				q.Close()
			} else if err := q.DestroyQueue(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Loop: %v", err)
				}
			case <-time.After(wait):
				t.Fatalf("Loop still running after %s", end)
			}
			if k.Config().Bound {
				t.Errorf("queue bound after %s", end)
			}
		})
	}
}
