//go:build linux

package nfqprom

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nfqueue-go/nfqueue"
	"github.com/nfqueue-go/nfqueue/internal/nstest"
	"github.com/prometheus/client_golang/prometheus"
)

// byQueue gathers reg and returns metric name's values by queue label,
// with extra label filters.
func byQueue(t *testing.T, reg *prometheus.Registry, name string, match map[string]string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			var queue string
			for _, l := range m.GetLabel() {
				if l.GetName() == "queue" {
					queue = l.GetValue()
				} else if want, ok := match[l.GetName()]; ok && want != l.GetValue() {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				out[queue] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[queue] = m.Gauge.GetValue()
			}
		}
	}
	return out
}

func sum(m map[string]float64) float64 {
	var s float64
	for _, v := range m {
		s += v
	}
	return s
}

// TestKernelSet serves a real two-queue Set in a throw-away namespace,
// holds packets without verdict, and checks the collector's per-queue
// series against what happened, the kernel's waiting count included.
func TestKernelSet(t *testing.T) {
	ns := nstest.New(t)
	rx := ns.ListenPacket("udp4", "0.0.0.0:0")
	tx := ns.ListenPacket("udp4", "127.0.0.1:0")
	port := rx.LocalAddr().(*net.UDPAddr).Port
	ns.IPTables(false, "-A", "OUTPUT", "-p", "udp", "--dport", fmt.Sprint(port), "-j", "NFQUEUE", "--queue-balance", "0:1")

	set, err := nfqueue.OpenSet(0, 2, &nfqueue.Config{NetNS: ns.Path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(nil, set))

	var mu sync.Mutex
	var held []*nfqueue.Packet
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- set.Serve(ctx, func(p *nfqueue.Packet) nfqueue.Verdict {
			mu.Lock()
			held = append(held, &nfqueue.Packet{ID: p.ID, Queue: p.Queue})
			mu.Unlock()
			return nfqueue.Defer
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Serve: %v", err)
		}
	}()

	// Eight destinations on loopback, so the balance hash may use both queues.
	const n = 16
	for i := range n {
		dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%8)), Port: port}
		if _, err := tx.WriteTo([]byte("metrics"), dst); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return sum(byQueue(t, reg, "nfqueue_packets_received_total", nil)) == n })

	for _, q := range []string{"0", "1"} {
		if v, ok := byQueue(t, reg, "nfqueue_kernel_stats_available", nil)[q]; !ok || v != 1 {
			t.Errorf("queue %s: kernel_stats_available %v (present %v)", q, v, ok)
		}
	}
	if got := sum(byQueue(t, reg, "nfqueue_packets_outstanding", nil)); got != n {
		t.Errorf("outstanding %v, want %d", got, n)
	}
	if got := sum(byQueue(t, reg, "nfqueue_kernel_packets_waiting", nil)); got != n {
		t.Errorf("kernel waiting %v, want %d", got, n)
	}

	mu.Lock()
	for _, p := range held {
		if err := set.Conn(p.Queue).SetVerdict(p.ID, nfqueue.Accept); err != nil {
			t.Error(err)
		}
	}
	mu.Unlock()
	waitFor(t, func() bool { return sum(byQueue(t, reg, "nfqueue_kernel_packets_waiting", nil)) == 0 })
	if got := sum(byQueue(t, reg, "nfqueue_verdicts_total", map[string]string{"verdict": "accept"})); got != n {
		t.Errorf("accept verdicts %v, want %d", got, n)
	}
	if got := sum(byQueue(t, reg, "nfqueue_packets_outstanding", nil)); got != 0 {
		t.Errorf("outstanding %v after the verdicts", got)
	}
	for i := range n {
		if _, ok := nstest.Recv(rx, 2*time.Second); !ok {
			t.Fatalf("receiver got %d of %d datagrams", i, n)
		}
	}
	t.Logf("received by queue: %v", byQueue(t, reg, "nfqueue_packets_received_total", nil))

	// After Close the kernel no longer lists the queues: the scrape still
	// succeeds, without the kernel's series.
	set.Close()
	avail := byQueue(t, reg, "nfqueue_kernel_stats_available", nil)
	if avail["0"] != 0 || avail["1"] != 0 {
		t.Errorf("kernel_stats_available after Close: %v", avail)
	}
	if w := byQueue(t, reg, "nfqueue_kernel_packets_waiting", nil); len(w) != 0 {
		t.Errorf("kernel series after Close: %v", w)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
