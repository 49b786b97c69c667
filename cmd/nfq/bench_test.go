package main

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestBenchMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{7, 7}, 7},
	} {
		in := append([]float64(nil), c.in...)
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
		for i := range in {
			if in[i] != c.in[i] {
				t.Errorf("median reordered its input: %v", c.in)
			}
		}
	}
	if !math.IsNaN(median(nil)) || medianPtr(nil) != nil {
		t.Error("median of nothing must be NaN, medianPtr nil")
	}
	sorted := []int64{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}
	if p := percentile(sorted, 0.5); p != 60 { // nearest rank of 4.5 rounds up
		t.Errorf("p50 = %v", p)
	}
	if p := percentile(sorted, 0.99); p != 100 {
		t.Errorf("p99 = %v", p)
	}
}

// benchFixture is three rounds of serve and pull with the no-queue
// measurements, pull failing in round 2.
func benchFixture() []benchRecord {
	lat := func(p50, p99 float64) *benchLat { return &benchLat{N: 100, P50Ns: p50, P99Ns: p99} }
	var recs []benchRecord
	for round, v := range []struct {
		base, serve, pull float64 // rates; the latencies follow
	}{{1000e3, 480e3, 300e3}, {1100e3, 460e3, 310e3}, {900e3, 500e3, 290e3}} {
		r := round + 1
		recs = append(recs,
			benchRecord{Round: r, Mode: benchNoQueue, Throughput: &benchTput{SentPPS: v.base, GenNs: 1000}, Latency: lat(10e3*float64(r), 40e3)},
			benchRecord{Round: r, Mode: "serve", Throughput: &benchTput{VerdictedPPS: v.serve, SentPPS: v.serve + 1, UserNs: 100 * float64(r), SysNs: 1600, GenNs: 2000,
				QueueDropped: 1, SocketDropped: 2}, Latency: lat(60e3+float64(r)*1e3, 400e3), Library: &benchLib{Accepted: 6400, BatchVerdicts: 100 * uint64(r)}},
		)
		pull := benchRecord{Round: r, Mode: "pull", Throughput: &benchTput{VerdictedPPS: v.pull, SentPPS: v.pull, UserNs: 400, SysNs: 2400, Left: 0},
			Latency: lat(50e3, 300e3), Library: &benchLib{Accepted: 1000}}
		if r == 2 {
			pull.Error = "5 packets left without a verdict"
			pull.Throughput.Left = 5
		}
		recs = append(recs, pull)
	}
	return recs
}

func TestSummarizeBench(t *testing.T) {
	nq, rows, failures := summarizeBench(benchFixture(), []string{"serve", "pull"})
	if nq == nil || nq.Mode != benchNoQueue || nq.SentPPS != 1000e3 || nq.Rounds != 3 || *nq.RTTP50Ns != 20e3 || nq.AddedP50Ns != nil {
		t.Fatalf("no-queue row %+v", nq)
	}
	if len(rows) != 2 || rows[0].Mode != "serve" || rows[1].Mode != "pull" {
		t.Fatalf("rows %+v", rows)
	}
	s, p := rows[0], rows[1]
	if s.Rounds != 3 || s.VerdictedPPS != 480e3 || s.SentPPS != 480e3+1 || s.UserNs != 200 || s.SysNs != 1600 || s.ConsumerNs() != 1800 || s.Ratio != 1 {
		t.Errorf("serve medians %+v", s)
	}
	if s.KernelDrops != 9 || s.Left != 0 {
		t.Errorf("serve drops %d (want the sum 9), left %d", s.KernelDrops, s.Left)
	}
	// 6400 packets in 100, 200, 300 batch verdicts: median 32.
	if s.PktsPerBatch != 32 {
		t.Errorf("serve packets per batch %v", s.PktsPerBatch)
	}
	// Added latency is taken round by round: (61-10, 62-20, 63-30) µs.
	if *s.RTTP50Ns != 62e3 || *s.AddedP50Ns != 42e3 || *s.AddedP99Ns != 360e3 {
		t.Errorf("serve latency %v %v %v", *s.RTTP50Ns, *s.AddedP50Ns, *s.AddedP99Ns)
	}
	// The failed round counts in no median.
	if p.Rounds != 2 || p.Failed != 1 || p.VerdictedPPS != 295e3 || math.Abs(p.Ratio-295.0/480) > 1e-9 || p.PktsPerBatch != 0 || p.Left != 0 {
		t.Errorf("pull %+v", p)
	}
	if len(failures) != 1 || failures[0] != "pull, round 2: 5 packets left without a verdict" {
		t.Errorf("failures %q", failures)
	}

	// Modes without any measurement, and no no-queue round.
	nq, rows, _ = summarizeBench(nil, []string{"busypoll"})
	if nq != nil || len(rows) != 1 || rows[0].Rounds != 0 || rows[0].RTTP50Ns != nil || rows[0].Ratio != 0 {
		t.Errorf("empty: %+v %+v", nq, rows)
	}
}

func TestBenchSpread(t *testing.T) {
	// serve: 460k to 500k around 480k (8%); pull 290k to 310k without
	// its failed round (7%): no note.
	if n := benchSpread(benchFixture(), []string{"serve", "pull"}); len(n) != 0 {
		t.Errorf("notes %q", n)
	}
	recs := benchFixture()
	recs[1].Throughput.VerdictedPPS = 380e3 // serve, round 1: median 460k, spread 120k
	n := benchSpread(recs, []string{"serve", "pull"})
	if len(n) != 1 || !strings.HasPrefix(n[0], "serve varied by 26% between rounds (380.0k to 500.0k/s)") {
		t.Errorf("notes %q", n)
	}
}

func TestWriteBenchText(t *testing.T) {
	nq, rows, failures := summarizeBench(benchFixture(), []string{"serve", "pull", "busypoll"})
	s := &benchSummary{
		Type:    "summary",
		Machine: benchMachine{CPUs: 2, Model: "Test CPU", Kernel: "6.18.0", Go: "go1.26", GenCPU: 0, ConsumerCPU: 1},
		Setup: benchSetup{Modes: []string{"serve", "pull", "busypoll"}, Rounds: 3, Duration: "5s", Size: 64, Latency: true,
			LatencyN: 100, LatencyGap: "1ms", Backend: "nft-queue"},
		NoQueue: nq, Modes: rows, Failures: failures, CleanedUp: true,
	}
	var b bytes.Buffer
	writeBenchText(&b, s, map[string]string{"serve": "serve desc"})
	out := b.String()
	t.Log("\n" + out)
	for _, want := range []string{
		"nfq bench: 2 CPUs (Test CPU), Linux 6.18.0, go1.26",
		"generator on CPU 0, consumer on CPU 1; UDP payload 64 B", "3 rounds, medians of 5s per mode", "rules nft-queue",
		"MODE", "VERDICTED/S", "VS SERVE", "CONSUMER CPU NS/PKT",
		"RTT P50", "ADDED P99", "100 round trips 1ms apart",
		"  serve          serve desc",
		"FAIL: pull, round 2: 5 packets left without a verdict",
		"(!)            some rounds of the mode failed",
		"1 measurement FAILED; the namespace and its rules are removed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	fields := func(prefix string) []string {
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[0] == prefix {
				return f
			}
		}
		t.Errorf("no line starting with %q", prefix)
		return nil
	}
	// Mode, rate, ratio, sent, CPU, (user/sys), gen, batch, drops, left.
	if f := fields("serve"); len(f) != 10 || f[1] != "480.0k" || f[2] != "1.00×" || f[4] != "1,800" || f[5] != "(200/1,600)" || f[6] != "2,000" ||
		f[7] != "32.0" || f[8] != "9" || f[9] != "0" {
		t.Errorf("serve line %q", f)
	}
	if f := fields("pull"); len(f) < 3 || f[1] != "(!)" || f[2] != "295.0k" {
		t.Errorf("pull line %q: a failed round is flagged", f)
	}
	if f := fields("busypoll"); len(f) < 3 || f[1] != "not" {
		t.Errorf("busypoll line %q", f)
	}
	if f := fields(benchNoQueue); len(f) < 4 || f[3] != "1.00M" {
		t.Errorf("no-queue line %q", f)
	}
	if strings.Contains(out, "NaN") || strings.Contains(out, "Inf") {
		t.Error("output has NaN or Inf")
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimRight(l, " ") != l {
			t.Errorf("trailing blanks: %q", l)
		}
	}

	// The summary is valid JSON, medians included.
	j, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back benchSummary
	if err := json.Unmarshal(j, &back); err != nil || len(back.Modes) != 3 || back.Modes[0].VerdictedPPS != 480e3 || *back.Modes[0].AddedP50Ns != 42e3 {
		t.Errorf("JSON round trip: %v %s", err, j)
	}

	// Interrupted, nothing measured: still a table, and the reason.
	b.Reset()
	_, rows, _ = summarizeBench(nil, []string{"serve"})
	writeBenchText(&b, &benchSummary{Machine: benchMachine{GenCPU: -1}, Setup: benchSetup{Rounds: 1}, Modes: rows, Interrupted: true}, nil)
	if !strings.Contains(b.String(), "interrupted: the tables show what was measured before Ctrl-C") || !strings.Contains(b.String(), "not pinned (one CPU)") {
		t.Errorf("interrupted output:\n%s", b.String())
	}
}

func TestBenchNumbers(t *testing.T) {
	for _, c := range []struct {
		v    float64
		k, n string
	}{{0, "-", "-"}, {999, "1.0k", "999"}, {1702.4, "1.7k", "1,702"}, {481234, "481.2k", "481,234"}, {1.25e6, "1.25M", "1,250,000"}, {math.NaN(), "-", "-"}} {
		if got := kpps(c.v); got != c.k {
			t.Errorf("kpps(%v) = %q, want %q", c.v, got, c.k)
		}
		if got := nsCount(c.v); got != c.n {
			t.Errorf("nsCount(%v) = %q, want %q", c.v, got, c.n)
		}
	}
	v := 70345.0
	if got := usec(&v); got != "70.3 µs" {
		t.Errorf("usec = %q", got)
	}
	if usec(nil) != "-" {
		t.Error("usec(nil)")
	}
}
