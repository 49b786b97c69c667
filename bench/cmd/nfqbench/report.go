package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// tputResult is the throughput measurement of one consumer in one round.
type tputResult struct {
	// Rate is packets verdicted per second while the generator sent.
	Rate      float64 `json:"rate_pps"`
	Verdicted uint64  `json:"verdicted"`
	WindowS   float64 `json:"window_s"`
	// Sent is the generator's own rate (datagrams the kernel accepted
	// from sendmmsg per second).
	Sent      float64           `json:"sent_pps"`
	GenErrors map[string]uint64 `json:"gen_errors,omitempty"`
	// Consumer CPU time per verdicted packet, from /proc/PID/stat.
	UserNs float64 `json:"user_ns_per_pkt"`
	SysNs  float64 `json:"sys_ns_per_pkt"`
	// CPUBusyNs is all non-idle time of the consumer's CPU per packet:
	// the consumer plus softirqs and kernel workers that ran there.
	CPUBusyNs float64 `json:"cpu_busy_ns_per_pkt"`
	// CPUSoftIRQNs is the softirq part of CPUBusyNs (with IRQ time
	// accounting, softirq work is not charged to the process it
	// interrupted).
	CPUSoftIRQNs float64 `json:"cpu_softirq_ns_per_pkt"`
	// KworkerNs is the CPU time of kernel worker threads per packet.
	KworkerNs float64 `json:"kworker_ns_per_pkt"`
	// GenNs is the generator's CPU time per verdicted packet.
	GenNs float64 `json:"gen_ns_per_pkt"`
	// OtherLoad is the larger, over the two CPUs, of the user time of
	// other programs as a fraction of the window.
	OtherLoad     float64 `json:"other_load"`
	OtherLoadGen  float64 `json:"other_load_gen_cpu"`
	OtherLoadCons float64 `json:"other_load_consumer_cpu"`
	// SyscallsPerPkt is the consumer's system calls per packet verdicted,
	// counted in a separate flood; 0 when not counted.
	SyscallsPerPkt float64 `json:"syscalls_per_pkt,omitempty"`
	// Drops is queue_dropped + queue_user_dropped over the round.
	Drops uint64 `json:"drops"`
	// Left is queue_total after the drain wait: packets never verdicted.
	Left uint32 `json:"left"`
	// Unaccounted is ids assigned − socket drops − packets seen after
	// the queue − packets left; 0 when every packet is accounted for.
	Unaccounted int64 `json:"unaccounted"`
}

// latResult is nfqgen pingpong's output (nanoseconds).
type latResult struct {
	N    int     `json:"n"`
	Lost uint64  `json:"lost"`
	P50  float64 `json:"p50_ns"`
	P90  float64 `json:"p90_ns"`
	P99  float64 `json:"p99_ns"`
	Max  float64 `json:"max_ns"`
	Mean float64 `json:"mean_ns"`
	// UtimeUs is the ping-pong process's user time.
	UtimeUs int64 `json:"utime_us"`
	// OtherLoad is as tputResult.OtherLoad, during the ping-pong.
	OtherLoad float64 `json:"other_load"`
}

type record struct {
	Round     int         `json:"round"`
	Consumer  string      `json:"consumer"`
	Tput      *tputResult `json:"throughput,omitempty"`
	Lat       *latResult  `json:"latency,omitempty"`
	CleanExit bool        `json:"clean_exit"`
	// Attempts is how many times the measurement was made; the record
	// keeps the last one.
	Attempts int `json:"attempts"`
	// Quiet is false when the CPUs were still busy with other work when
	// a measurement began.
	Quiet    bool   `json:"quiet"`
	ExitNote string `json:"exit_note,omitempty"`
	Err      string `json:"error,omitempty"`
}

func (r record) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-20s", r.Consumer)
	if r.Err != "" {
		fmt.Fprintf(&b, " FAILED: %s", firstLine(r.Err))
		return b.String()
	}
	if t := r.Tput; t != nil {
		if r.Consumer == "baseline" {
			fmt.Fprintf(&b, " sent %s/s", kilo(t.Sent))
		} else {
			fmt.Fprintf(&b, " %s/s verdicted (sent %s/s), %.0f ns/pkt (u %.0f s %.0f), cpu busy %.0f (si %.0f kw %.0f), gen %.0f ns/pkt, drops %d, left %d, other load %.0f%%",
				kilo(t.Rate), kilo(t.Sent), t.UserNs+t.SysNs, t.UserNs, t.SysNs, t.CPUBusyNs, t.CPUSoftIRQNs, t.KworkerNs, t.GenNs, t.Drops, t.Left, t.OtherLoad*100)
			if t.SyscallsPerPkt > 0 {
				fmt.Fprintf(&b, ", %.2f syscalls/pkt", t.SyscallsPerPkt)
			}
			if t.Unaccounted != 0 {
				fmt.Fprintf(&b, ", unaccounted %d", t.Unaccounted)
			}
		}
	}
	if !r.Quiet {
		b.WriteString(" [CPUs were busy with other work]")
	}
	if l := r.Lat; l != nil {
		fmt.Fprintf(&b, "; rtt p50 %.1f µs p99 %.1f µs, other load %.0f%%", l.P50/1e3, l.P99/1e3, l.OtherLoad*100)
		if l.Lost > 0 {
			fmt.Fprintf(&b, " (%d lost)", l.Lost)
		}
	}
	return b.String()
}

func kilo(v float64) string {
	if v >= 1e6 {
		return fmt.Sprintf("%.2fM", v/1e6)
	}
	return fmt.Sprintf("%.1fk", v/1e3)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// summary holds the medians of one consumer over the rounds.
type summary struct {
	key, label               string
	busyPoll                 bool
	rounds                   int
	rate, sent               float64
	user, sys, busy, softirq float64
	gen, otherLoad, kworker  float64
	syscalls                 float64
	latOtherLoad             float64
	noisy                    int
	drops                    uint64
	left                     uint32
	unaccounted              int64
	p50, p99, addP50, addP99 float64
	hasTput, hasLat          bool
	lost                     uint64
	failures, unclean        int
	failNotes, uncleanNotes  []string
	rateMin, rateMax         float64
}

func (b *bench) summarize() (base summary, rows []summary) {
	// Baseline latency per round, to subtract from the same round.
	baseP50 := map[int]float64{}
	baseP99 := map[int]float64{}
	var bSent, bP50, bP99 []float64
	for _, r := range b.records {
		if r.Consumer != "baseline" {
			continue
		}
		if r.Tput != nil {
			bSent = append(bSent, r.Tput.Sent)
		}
		if r.Lat != nil {
			baseP50[r.Round], baseP99[r.Round] = r.Lat.P50, r.Lat.P99
			bP50 = append(bP50, r.Lat.P50)
			bP99 = append(bP99, r.Lat.P99)
		}
	}
	base = summary{key: "baseline", sent: median(bSent), p50: median(bP50), p99: median(bP99),
		hasTput: len(bSent) > 0, hasLat: len(bP50) > 0}

	for _, c := range b.consumers {
		s := summary{key: c.key, label: c.label, busyPoll: c.busy, rateMin: math.Inf(1)}
		var rate, sent, user, sys, busy, softirq, kworker, syscalls, gen, other, latOther, p50, p99, aP50, aP99 []float64
		for _, r := range b.records {
			if r.Consumer != c.key {
				continue
			}
			s.rounds++
			if r.Err != "" {
				s.failures++
				s.failNotes = append(s.failNotes, fmt.Sprintf("round %d: %s", r.Round, firstLine(r.Err)))
				continue
			}
			if !r.CleanExit {
				s.unclean++
				s.uncleanNotes = append(s.uncleanNotes, fmt.Sprintf("round %d: %s", r.Round, firstLine(r.ExitNote)))
			}
			if t := r.Tput; t != nil {
				rate = append(rate, t.Rate)
				sent = append(sent, t.Sent)
				user = append(user, t.UserNs)
				sys = append(sys, t.SysNs)
				busy = append(busy, t.CPUBusyNs)
				softirq = append(softirq, t.CPUSoftIRQNs)
				kworker = append(kworker, t.KworkerNs)
				if t.SyscallsPerPkt > 0 {
					syscalls = append(syscalls, t.SyscallsPerPkt)
				}
				gen = append(gen, t.GenNs)
				other = append(other, t.OtherLoad)
				if t.OtherLoad > b.o.noiseMax {
					s.noisy++
				}
				s.drops += t.Drops
				s.left = max(s.left, t.Left)
				if t.Unaccounted != 0 && (s.unaccounted == 0 || abs(t.Unaccounted) > abs(s.unaccounted)) {
					s.unaccounted = t.Unaccounted
				}
				s.rateMin = min(s.rateMin, t.Rate)
				s.rateMax = max(s.rateMax, t.Rate)
			}
			if l := r.Lat; l != nil {
				if l.OtherLoad > b.o.noiseMax && (r.Tput == nil || r.Tput.OtherLoad <= b.o.noiseMax) {
					s.noisy++
				}
				latOther = append(latOther, l.OtherLoad)
				p50 = append(p50, l.P50)
				p99 = append(p99, l.P99)
				s.lost += l.Lost
				if bp, ok := baseP50[r.Round]; ok {
					aP50 = append(aP50, l.P50-bp)
					aP99 = append(aP99, l.P99-baseP99[r.Round])
				}
			}
		}
		if s.rounds == 0 {
			continue
		}
		s.hasTput = len(rate) > 0
		s.hasLat = len(p50) > 0
		s.rate, s.sent = median(rate), median(sent)
		s.user, s.sys, s.busy = median(user), median(sys), median(busy)
		s.softirq, s.gen, s.otherLoad = median(softirq), median(gen), median(other)
		s.kworker = median(kworker)
		s.syscalls = median(syscalls)
		s.latOtherLoad = median(latOther)
		s.p50, s.p99, s.addP50, s.addP99 = median(p50), median(p99), median(aP50), median(aP99)
		rows = append(rows, s)
	}
	return base, rows
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

func find(rows []summary, key string) (summary, bool) {
	for _, r := range rows {
		if r.key == key {
			return r, true
		}
	}
	return summary{}, false
}

func ratio(v, ref float64, ok bool) string {
	if !ok || ref <= 0 || math.IsNaN(v) || math.IsNaN(ref) {
		return "—"
	}
	return fmt.Sprintf("%.2f×", v/ref)
}

func num(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	s := fmt.Sprintf("%.0f", v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

func dec2(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf("%.2f", v)
}

func pct(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf("%.0f%%", v*100)
}

func us(ns float64) string {
	if math.IsNaN(ns) {
		return "—"
	}
	return fmt.Sprintf("%.1f", ns/1e3)
}

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	rel := "?"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		rel = strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%s, %d CPUs, Linux %s, %s", model, runtime.NumCPU(), rel, runtime.Version())
}

func (b *bench) report(w io.Writer) {
	base, rows := b.summarize()
	classic, okC := find(rows, refClassic)
	batch, okB := find(rows, refBatch)
	o := b.o
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }

	p("## NFQUEUE consumers side by side\n\n")
	p("- Machine: %s\n", machine())
	p("- Run: %s, %d round(s) × %g s flood per consumer, consumers interleaved in every round; UDP payload %d B over 127.0.0.1 in a throw-away network namespace; generator on CPU %d, consumer on CPU %d; every consumer copies whole packets and accepts every packet; medians over rounds.\n",
		b.started.Format(time.DateTime), o.rounds, o.seconds, o.size, o.genCPU, o.consCPU)
	p("- Command: `./run.sh %s` (or `go run ./cmd/nfqbench` with the same flags)\n\n", strings.Join(os.Args[1:], " "))

	p("### Throughput\n\n")
	p("| consumer | verdicted pkt/s | vs C classic | vs C batch | generator sent pkt/s | consumer CPU ns/pkt (user/sys) | CPU vs C batch | CPU %d busy ns/pkt (softirq/kworker) | syscalls/pkt | generator CPU ns/pkt | kernel drops | left without verdict |\n", o.consCPU)
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	if base.hasTput {
		p("| no NFQUEUE rule (generator alone) | — | — | — | %s | — | — | — | — | — | — | — |\n", num(base.sent))
	}
	for _, r := range rows {
		if !r.hasTput {
			continue
		}
		cpu := r.user + r.sys
		p("| %s | %s | %s | %s | %s | %s (%s/%s) | %s | %s (%s/%s) | %s | %s | %s | %d |\n",
			r.label, num(r.rate), ratio(r.rate, classic.rate, okC && classic.hasTput),
			ratio(r.rate, batch.rate, okB && batch.hasTput), num(r.sent),
			num(cpu), num(r.user), num(r.sys), ratio(cpu, batch.user+batch.sys, okB && batch.hasTput),
			num(r.busy), num(r.softirq), num(r.kworker), dec2(r.syscalls), num(r.gen), num(float64(r.drops)), r.left)
	}
	p("\n")

	if !o.noLatency && base.hasLat {
		p("### Added round-trip latency (ping-pong, %d round trips per consumer and round, %v between them)\n\n", o.latN, o.latGap)
		busyRef, okBusy := find(rows, refBusy)
		p("| consumer | RTT p50 µs | RTT p99 µs | added p50 µs | added p99 µs | added p99 vs C classic | RTT p50 vs C busy-poll |\n")
		p("|---|---:|---:|---:|---:|---:|---:|\n")
		p("| no queue | %s | %s | — | — | — | — |\n", us(base.p50), us(base.p99))
		for _, r := range rows {
			if !r.hasLat {
				continue
			}
			p("| %s | %s | %s | %s | %s | %s | %s |\n", r.label, us(r.p50), us(r.p99), us(r.addP50), us(r.addP99),
				ratio(r.addP99, classic.addP99, okC && classic.hasLat),
				ratio(r.p50, busyRef.p50, r.busyPoll && okBusy && busyRef.hasLat))
		}
		p("\n")
	}

	var notes []string
	for _, c := range b.consumers {
		if c.buildErr != nil {
			notes = append(notes, fmt.Sprintf("%s: not built: %s", c.key, firstLine(c.buildErr.Error())))
		}
	}
	for _, r := range rows {
		if r.failures > 0 {
			notes = append(notes, fmt.Sprintf("%s: failed in %d of %d rounds (%s)", r.key, r.failures, r.rounds, strings.Join(r.failNotes, "; ")))
		}
		if r.unclean > 0 {
			notes = append(notes, fmt.Sprintf("%s: did not exit cleanly on SIGTERM in %d round(s) (%s)", r.key, r.unclean, strings.Join(r.uncleanNotes, "; ")))
		}
		if r.unaccounted != 0 {
			notes = append(notes, fmt.Sprintf("%s: %d packet(s) unaccounted for (ids assigned − socket drops − accepted − left)", r.key, r.unaccounted))
		}
		if r.noisy > 0 {
			notes = append(notes, fmt.Sprintf("%s: other programs took more than %.0f%% of a benchmark CPU in %d of %d round(s), even after %d retries (median during the flood %s, during the ping-pong %s)",
				r.key, b.o.noiseMax*100, r.noisy, r.rounds, b.o.retries, pct(r.otherLoad), pct(r.latOtherLoad)))
		}
		if r.lost > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d ping-pong round trip(s) lost", r.key, r.lost))
		}
		if r.hasTput && r.rateMax > 0 && (r.rateMax-r.rateMin)/r.rateMax > 0.15 {
			notes = append(notes, fmt.Sprintf("%s: verdicted rate varied by more than 15%% between rounds (%s–%s pkt/s)", r.key, num(r.rateMin), num(r.rateMax)))
		}
	}
	if len(notes) > 0 {
		p("Notes:\n\n")
		for _, n := range notes {
			p("- %s\n", n)
		}
		p("\n")
	}
}
