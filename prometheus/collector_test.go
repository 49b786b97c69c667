package nfqprom

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/nfqueue-go/nfqueue"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeQueue is a Source with a queue number, like *nfqueue.Conn.
type fakeQueue struct {
	mu sync.Mutex
	q  uint16
	st nfqueue.Stats
}

func (f *fakeQueue) Queue() uint16 { return f.q }

func (f *fakeQueue) Stats() nfqueue.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

// anonymous is a Source without a queue number.
type anonymous struct{ st nfqueue.Stats }

func (a anonymous) Stats() nfqueue.Stats { return a.st }

func sampleStats() nfqueue.Stats {
	return nfqueue.Stats{
		Received: 100, Accepted: 90, Dropped: 5, Queued: 2, Repeated: 1, Stopped: 1,
		BatchVerdicts: 7, Outstanding: 1, Timeouts: 3, Overruns: 4, Truncated: 6, Malformed: 8, VerdictErrors: 9,
		Kernel: nfqueue.KernelStats{Queue: 3, PortID: 1234, Waiting: 2, CopyMode: 2, CopyRange: 0xffff,
			QueueDropped: 11, UserDropped: 12, LastID: 100},
	}
}

const allMetrics = `
# HELP nfqueue_batch_verdicts_total Batch verdict (VERDICT_BATCH) messages sent.
# TYPE nfqueue_batch_verdicts_total counter
nfqueue_batch_verdicts_total{queue="3"} 7
# HELP nfqueue_kernel_packets_waiting Packets the kernel holds waiting for a verdict.
# TYPE nfqueue_kernel_packets_waiting gauge
nfqueue_kernel_packets_waiting{queue="3"} 2
# HELP nfqueue_kernel_queue_dropped_total Packets the kernel dropped because the queue was full.
# TYPE nfqueue_kernel_queue_dropped_total counter
nfqueue_kernel_queue_dropped_total{queue="3"} 11
# HELP nfqueue_kernel_stats_available 1 if the kernel's statistics for the queue could be read, else 0.
# TYPE nfqueue_kernel_stats_available gauge
nfqueue_kernel_stats_available{queue="3"} 1
# HELP nfqueue_kernel_user_dropped_total Packets the kernel dropped because the socket's receive buffer was full.
# TYPE nfqueue_kernel_user_dropped_total counter
nfqueue_kernel_user_dropped_total{queue="3"} 12
# HELP nfqueue_malformed_messages_total Messages from the kernel that could not be decoded.
# TYPE nfqueue_malformed_messages_total counter
nfqueue_malformed_messages_total{queue="3"} 8
# HELP nfqueue_overruns_total Receive buffer overruns (ENOBUFS): the kernel dropped packets for lack of socket buffer.
# TYPE nfqueue_overruns_total counter
nfqueue_overruns_total{queue="3"} 4
# HELP nfqueue_packets_outstanding Packets delivered and still without a verdict.
# TYPE nfqueue_packets_outstanding gauge
nfqueue_packets_outstanding{queue="3"} 1
# HELP nfqueue_packets_received_total Packets the kernel delivered to the queue's socket.
# TYPE nfqueue_packets_received_total counter
nfqueue_packets_received_total{queue="3"} 100
# HELP nfqueue_packets_truncated_total Packets whose payload was cut to the copy range.
# TYPE nfqueue_packets_truncated_total counter
nfqueue_packets_truncated_total{queue="3"} 6
# HELP nfqueue_verdict_errors_total Errors the kernel returned for verdicts.
# TYPE nfqueue_verdict_errors_total counter
nfqueue_verdict_errors_total{queue="3"} 9
# HELP nfqueue_verdict_timeouts_total Packets given the default verdict because none came in time.
# TYPE nfqueue_verdict_timeouts_total counter
nfqueue_verdict_timeouts_total{queue="3"} 3
# HELP nfqueue_verdicts_total Verdicts given, by kind; a batch verdict counts once per packet.
# TYPE nfqueue_verdicts_total counter
nfqueue_verdicts_total{queue="3",verdict="accept"} 90
nfqueue_verdicts_total{queue="3",verdict="drop"} 5
nfqueue_verdicts_total{queue="3",verdict="queue"} 2
nfqueue_verdicts_total{queue="3",verdict="repeat"} 1
nfqueue_verdicts_total{queue="3",verdict="stop"} 1
`

func TestCollect(t *testing.T) {
	c := NewCollector(nil, &fakeQueue{q: 3, st: sampleStats()})
	if err := testutil.CollectAndCompare(c, strings.NewReader(allMetrics)); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(c); n != 17 {
		t.Errorf("%d series, want 17", n)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestCollectWithoutKernelStats(t *testing.T) {
	st := sampleStats()
	st.Kernel = nfqueue.KernelStats{}
	st.KernelErr = errors.New("open /proc/net/netfilter/nfnetlink_queue: permission denied")
	c := NewCollector(nil, &fakeQueue{q: 3, st: st})

	// The scrape succeeds without the kernel's series.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "nfqueue_kernel_packets_waiting", "nfqueue_kernel_queue_dropped_total", "nfqueue_kernel_user_dropped_total":
			t.Errorf("%s reported without kernel stats", mf.GetName())
		}
	}
	if n := testutil.CollectAndCount(c); n != 14 {
		t.Errorf("%d series, want 14", n)
	}
	want := `
# HELP nfqueue_kernel_stats_available 1 if the kernel's statistics for the queue could be read, else 0.
# TYPE nfqueue_kernel_stats_available gauge
nfqueue_kernel_stats_available{queue="3"} 0
# HELP nfqueue_packets_received_total Packets the kernel delivered to the queue's socket.
# TYPE nfqueue_packets_received_total counter
nfqueue_packets_received_total{queue="3"} 100
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"nfqueue_kernel_stats_available", "nfqueue_packets_received_total", "nfqueue_kernel_packets_waiting"); err != nil {
		t.Error(err)
	}
}

func TestCollectManySources(t *testing.T) {
	a := &fakeQueue{q: 0, st: nfqueue.Stats{Received: 1, Accepted: 1}}
	b := &fakeQueue{q: 1, st: nfqueue.Stats{Received: 2, Dropped: 2}}
	c := NewCollector(nil, a, b, anonymous{nfqueue.Stats{Received: 5}})
	want := `
# HELP nfqueue_packets_received_total Packets the kernel delivered to the queue's socket.
# TYPE nfqueue_packets_received_total counter
nfqueue_packets_received_total{queue=""} 5
nfqueue_packets_received_total{queue="0"} 1
nfqueue_packets_received_total{queue="1"} 2
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "nfqueue_packets_received_total"); err != nil {
		t.Error(err)
	}
	verdicts := `
# HELP nfqueue_verdicts_total Verdicts given, by kind; a batch verdict counts once per packet.
# TYPE nfqueue_verdicts_total counter
nfqueue_verdicts_total{queue="",verdict="accept"} 0
nfqueue_verdicts_total{queue="",verdict="drop"} 0
nfqueue_verdicts_total{queue="",verdict="queue"} 0
nfqueue_verdicts_total{queue="",verdict="repeat"} 0
nfqueue_verdicts_total{queue="",verdict="stop"} 0
nfqueue_verdicts_total{queue="0",verdict="accept"} 1
nfqueue_verdicts_total{queue="0",verdict="drop"} 0
nfqueue_verdicts_total{queue="0",verdict="queue"} 0
nfqueue_verdicts_total{queue="0",verdict="repeat"} 0
nfqueue_verdicts_total{queue="0",verdict="stop"} 0
nfqueue_verdicts_total{queue="1",verdict="accept"} 0
nfqueue_verdicts_total{queue="1",verdict="drop"} 2
nfqueue_verdicts_total{queue="1",verdict="queue"} 0
nfqueue_verdicts_total{queue="1",verdict="repeat"} 0
nfqueue_verdicts_total{queue="1",verdict="stop"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(verdicts), "nfqueue_verdicts_total"); err != nil {
		t.Error(err)
	}

	// Counters follow the source between scrapes.
	a.mu.Lock()
	a.st.Received = 10
	a.mu.Unlock()
	want = strings.Replace(want, `{queue="0"} 1`, `{queue="0"} 10`, 1)
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "nfqueue_packets_received_total"); err != nil {
		t.Error(err)
	}
}

func TestOptions(t *testing.T) {
	c := NewCollector(&Options{Namespace: "edge", ConstLabels: prometheus.Labels{"netns": "blue"}},
		&fakeQueue{q: 7, st: nfqueue.Stats{Received: 4}})
	want := `
# HELP edge_packets_received_total Packets the kernel delivered to the queue's socket.
# TYPE edge_packets_received_total counter
edge_packets_received_total{netns="blue",queue="7"} 4
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "edge_packets_received_total"); err != nil {
		t.Error(err)
	}

	// Two Collectors told apart by a constant label can share a registry;
	// two alike cannot.
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	if err := reg.Register(NewCollector(&Options{Namespace: "edge", ConstLabels: prometheus.Labels{"netns": "red"}}, &fakeQueue{q: 7})); err != nil {
		t.Errorf("second Collector with another netns label: %v", err)
	}
	if err := reg.Register(NewCollector(&Options{Namespace: "edge", ConstLabels: prometheus.Labels{"netns": "red"}})); err == nil {
		t.Error("a duplicate Collector registered")
	}
	if _, err := reg.Gather(); err != nil {
		t.Error(err)
	}
}

func TestConcurrentScrapes(t *testing.T) {
	src := &fakeQueue{q: 1, st: sampleStats()}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(nil, src))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if _, err := reg.Gather(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for i := range 100 {
		src.mu.Lock()
		src.st.Received = uint64(i)
		src.mu.Unlock()
	}
	wg.Wait()
}
