package main

// The results of nfq bench and how they are summed up and printed. This
// file builds on every platform so that its tests run anywhere; the
// measuring is in bench_linux.go.

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// benchNoQueue is the mode name of the measurements without a queue: the
// flood that shows what the generator reaches, the ping-pong baseline.
const benchNoQueue = "no-queue"

// benchTput is one flood: one mode in one round.
type benchTput struct {
	// VerdictedPPS is packets verdicted per second while the generator
	// sent, from the kernel's counters (0 without a queue).
	VerdictedPPS float64 `json:"verdicted_pps"`
	Verdicted    uint64  `json:"verdicted"`
	WindowS      float64 `json:"window_s"`
	// SentPPS is the datagrams the generator's sendmmsg calls sent per
	// second.
	SentPPS    float64           `json:"sent_pps"`
	Sent       uint64            `json:"sent"`
	SendErrors map[string]uint64 `json:"send_errors,omitempty"`
	// UserNs and SysNs are the consumer process's CPU time per packet
	// verdicted.
	UserNs float64 `json:"consumer_user_ns_per_pkt"`
	SysNs  float64 `json:"consumer_sys_ns_per_pkt"`
	// GenNs is the generator thread's CPU time per packet sent.
	GenNs float64 `json:"generator_ns_per_pkt"`
	// QueueDropped and SocketDropped are the kernel's drops: queue full,
	// socket buffer full.
	QueueDropped  uint64 `json:"queue_dropped"`
	SocketDropped uint64 `json:"socket_dropped"`
	// Left is the packets still waiting for a verdict after the flood and
	// the drain: must be 0.
	Left uint32 `json:"left_without_verdict"`
	// Unaccounted is ids assigned − socket drops − packets that reached
	// the input rule after their verdict − packets left; 0 when every
	// packet is accounted for.
	Unaccounted int64 `json:"unaccounted"`
}

// benchLat is one ping-pong run, in nanoseconds.
type benchLat struct {
	N     int     `json:"n"`
	Lost  int     `json:"lost"`
	P50Ns float64 `json:"p50_ns"`
	P90Ns float64 `json:"p90_ns"`
	P99Ns float64 `json:"p99_ns"`
	MaxNs float64 `json:"max_ns"`
}

// benchLib is the consumer's nfqueue.Stats when it stopped: everything it
// did in one mode and round (flood, drain and ping-pong).
type benchLib struct {
	Received      uint64 `json:"received"`
	Accepted      uint64 `json:"accepted"`
	BatchVerdicts uint64 `json:"batch_verdicts"`
	Overruns      uint64 `json:"overruns"`
	VerdictErrors uint64 `json:"verdict_errors"`
	Malformed     uint64 `json:"malformed"`
	Outstanding   int    `json:"outstanding"`
	Errors        uint64 `json:"errors"` // errors reported to OnError or returned by ReadPacket
}

// pktsPerBatch returns the packets accepted per VERDICT_BATCH message, 0
// when none was sent.
func (l *benchLib) pktsPerBatch() float64 {
	if l == nil || l.BatchVerdicts == 0 {
		return 0
	}
	return float64(l.Accepted) / float64(l.BatchVerdicts)
}

// benchRecord is one measurement: a mode (or no-queue) in one round.
type benchRecord struct {
	Type       string     `json:"type"` // "measurement"
	Round      int        `json:"round"`
	Mode       string     `json:"mode"`
	Throughput *benchTput `json:"throughput,omitempty"`
	Latency    *benchLat  `json:"latency,omitempty"`
	Library    *benchLib  `json:"library,omitempty"`
	Notes      []string   `json:"notes,omitempty"`
	// Error says why the measurement failed; it then counts in no
	// median.
	Error string `json:"error,omitempty"`
}

// benchRow is one line of the summary: the medians of a mode over rounds.
type benchRow struct {
	Mode   string `json:"mode"`
	Rounds int    `json:"rounds"` // measurements that count
	Failed int    `json:"failed,omitempty"`

	VerdictedPPS float64 `json:"verdicted_pps,omitempty"`
	// Ratio is VerdictedPPS over that of the first mode.
	Ratio        float64 `json:"ratio_to_first,omitempty"`
	SentPPS      float64 `json:"sent_pps,omitempty"`
	UserNs       float64 `json:"consumer_user_ns_per_pkt,omitempty"`
	SysNs        float64 `json:"consumer_sys_ns_per_pkt,omitempty"`
	GenNs        float64 `json:"generator_ns_per_pkt,omitempty"`
	PktsPerBatch float64 `json:"pkts_per_batch,omitempty"`
	// KernelDrops is the sum over rounds, Left the largest.
	KernelDrops uint64 `json:"kernel_drops"`
	Left        uint32 `json:"left_without_verdict"`

	RTTP50Ns   *float64 `json:"rtt_p50_ns,omitempty"`
	RTTP99Ns   *float64 `json:"rtt_p99_ns,omitempty"`
	AddedP50Ns *float64 `json:"added_p50_ns,omitempty"`
	AddedP99Ns *float64 `json:"added_p99_ns,omitempty"`

	hasTput bool
}

// ConsumerNs is the consumer's CPU time per packet, user and system.
func (r *benchRow) ConsumerNs() float64 { return r.UserNs + r.SysNs }

// benchMachine describes where the benchmark ran.
type benchMachine struct {
	CPUs   int    `json:"cpus"`
	Model  string `json:"cpu_model,omitempty"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
	// GenCPU and ConsumerCPU are the CPUs the generator and the
	// consumer are pinned to; -1 when not pinned (one CPU).
	GenCPU      int `json:"generator_cpu"`
	ConsumerCPU int `json:"consumer_cpu"`
}

// benchSetup is what was measured, and how.
type benchSetup struct {
	Modes      []string `json:"modes"`
	Rounds     int      `json:"rounds"`
	Duration   string   `json:"duration"`
	Size       int      `json:"size"`
	Latency    bool     `json:"latency"`
	LatencyN   int      `json:"latency_n,omitempty"`
	LatencyGap string   `json:"latency_gap,omitempty"`
	Queue      int      `json:"queue"`
	Backend    string   `json:"rules_backend,omitempty"`
}

// benchSummary is nfq bench's result: the last line with --json.
type benchSummary struct {
	Type        string       `json:"type"` // "summary"
	OK          bool         `json:"ok"`
	Machine     benchMachine `json:"machine"`
	Setup       benchSetup   `json:"setup"`
	NoQueue     *benchRow    `json:"no_queue,omitempty"`
	Modes       []benchRow   `json:"modes"`
	Failures    []string     `json:"failures,omitempty"`
	Notes       []string     `json:"notes,omitempty"`
	Interrupted bool         `json:"interrupted,omitempty"`
	CleanedUp   bool         `json:"cleaned_up"`
}

// median returns the median of v, NaN for none.
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

// medianPtr returns the median of v, nil for none.
func medianPtr(v []float64) *float64 {
	if len(v) == 0 {
		return nil
	}
	m := median(v)
	return &m
}

// percentile returns the p-quantile (0..1) of sorted values, nearest rank.
func percentile(sorted []int64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	return float64(sorted[int(p*float64(len(sorted)-1)+0.5)])
}

// summarizeBench computes the medians of each mode over the rounds, in the
// order of modes, and those of the measurements without a queue. The added
// latency of a mode is taken against the no-queue ping-pong of the same
// round.
func summarizeBench(records []benchRecord, modes []string) (noQueue *benchRow, rows []benchRow, failures []string) {
	baseLat := map[int]*benchLat{}
	for i := range records {
		r := &records[i]
		if r.Mode == benchNoQueue && r.Error == "" && r.Latency != nil {
			baseLat[r.Round] = r.Latency
		}
	}
	row := func(mode string) benchRow {
		out := benchRow{Mode: mode}
		var rate, sent, user, sys, gen, batch, p50, p99, add50, add99 []float64
		for i := range records {
			r := &records[i]
			if r.Mode != mode {
				continue
			}
			if r.Error != "" {
				out.Failed++
				failures = append(failures, fmt.Sprintf("%s, round %d: %s", mode, r.Round, r.Error))
				continue
			}
			out.Rounds++
			if t := r.Throughput; t != nil {
				out.hasTput = true
				sent = append(sent, t.SentPPS)
				gen = append(gen, t.GenNs)
				if mode != benchNoQueue {
					rate = append(rate, t.VerdictedPPS)
					user = append(user, t.UserNs)
					sys = append(sys, t.SysNs)
					out.KernelDrops += t.QueueDropped + t.SocketDropped
					out.Left = max(out.Left, t.Left)
				}
			}
			if b := r.Library.pktsPerBatch(); b > 0 {
				batch = append(batch, b)
			}
			if l := r.Latency; l != nil {
				p50 = append(p50, l.P50Ns)
				p99 = append(p99, l.P99Ns)
				if base, ok := baseLat[r.Round]; ok && mode != benchNoQueue {
					add50 = append(add50, l.P50Ns-base.P50Ns)
					add99 = append(add99, l.P99Ns-base.P99Ns)
				}
			}
		}
		finite := func(v []float64) float64 {
			if m := median(v); !math.IsNaN(m) {
				return m
			}
			return 0
		}
		out.VerdictedPPS, out.SentPPS = finite(rate), finite(sent)
		out.UserNs, out.SysNs, out.GenNs = finite(user), finite(sys), finite(gen)
		out.PktsPerBatch = finite(batch)
		out.RTTP50Ns, out.RTTP99Ns = medianPtr(p50), medianPtr(p99)
		out.AddedP50Ns, out.AddedP99Ns = medianPtr(add50), medianPtr(add99)
		return out
	}
	for _, r := range records {
		if r.Mode == benchNoQueue {
			nq := row(benchNoQueue)
			noQueue = &nq
			break
		}
	}
	for _, m := range modes {
		rows = append(rows, row(m))
	}
	if len(rows) > 0 && rows[0].VerdictedPPS > 0 {
		for i := range rows {
			rows[i].Ratio = rows[i].VerdictedPPS / rows[0].VerdictedPPS
		}
	}
	return noQueue, rows, failures
}

// benchSpread notes the modes whose verdicted rate varied by more than 15%
// of its median between rounds.
func benchSpread(records []benchRecord, modes []string) []string {
	var notes []string
	for _, m := range modes {
		var v []float64
		for _, r := range records {
			if r.Mode == m && r.Error == "" && r.Throughput != nil {
				v = append(v, r.Throughput.VerdictedPPS)
			}
		}
		if len(v) < 2 {
			continue
		}
		lo, hi, med := slices.Min(v), slices.Max(v), median(v)
		if med > 0 && (hi-lo)/med > 0.15 {
			notes = append(notes, fmt.Sprintf("%s varied by %.0f%% between rounds (%s to %s/s): other programs, or the virtual machine's state; more rounds steady the median",
				m, (hi-lo)/med*100, kpps(lo), kpps(hi)))
		}
	}
	return notes
}

// kpps formats a rate: 481.2k, 1.25M.
func kpps(v float64) string {
	switch {
	case v <= 0 || math.IsNaN(v):
		return "-"
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	}
	return fmt.Sprintf("%.1fk", v/1e3)
}

// nsCount formats nanoseconds as a whole number with thousands
// separators: 1,702.
func nsCount(v float64) string {
	if v <= 0 || math.IsNaN(v) {
		return "-"
	}
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// usec formats nanoseconds in microseconds; "-" for nil.
func usec(ns *float64) string {
	if ns == nil || math.IsNaN(*ns) {
		return "-"
	}
	return fmt.Sprintf("%.1f µs", *ns/1e3)
}

// writeBenchText prints the summary as the tables nfq bench ends with.
func writeBenchText(w io.Writer, s *benchSummary, modeDesc map[string]string) {
	m, st := s.Machine, s.Setup
	cpus := fmt.Sprintf("%d CPUs", m.CPUs)
	if m.Model != "" {
		cpus += " (" + m.Model + ")"
	}
	fmt.Fprintf(w, "nfq bench: %s, Linux %s, %s\n", cpus, m.Kernel, m.Go)
	pin := "generator and consumer not pinned (one CPU)"
	if m.GenCPU >= 0 {
		pin = fmt.Sprintf("generator on CPU %d, consumer on CPU %d", m.GenCPU, m.ConsumerCPU)
	}
	rounds := "1 round"
	if st.Rounds != 1 {
		rounds = fmt.Sprintf("%d rounds, medians", st.Rounds)
	}
	fmt.Fprintf(w, "%s; UDP payload %d B over 127.0.0.1 in a throw-away network namespace; %s of %s per mode; queue %d, whole packets, every packet accepted",
		pin, st.Size, rounds, st.Duration, st.Queue)
	if st.Backend != "" {
		fmt.Fprintf(w, "; rules %s", st.Backend)
	}
	fmt.Fprintln(w)

	first := "FIRST"
	if len(s.Modes) > 0 {
		first = strings.ToUpper(s.Modes[0].Mode)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "MODE\tVERDICTED/S\tVS %s\tSENT/S\tCONSUMER CPU NS/PKT\t(USER/SYS)\tGEN CPU NS/PKT\tPKTS/BATCH\tDROPS\tLEFT\n", first)
	if r := s.NoQueue; r != nil && r.hasTput {
		fmt.Fprintf(tw, "%s\t-\t-\t%s\t-\t\t%s\t-\t-\t-\n", r.Mode, kpps(r.SentPPS), nsCount(r.GenNs))
	}
	for _, r := range s.Modes {
		if !r.hasTput {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t\t-\t-\t-\t-\n", r.Mode, failedCell(r))
			continue
		}
		ratio := "-"
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f×", r.Ratio)
		}
		batch := "-"
		if r.PktsPerBatch > 0 {
			batch = fmt.Sprintf("%.1f", r.PktsPerBatch)
		}
		split := fmt.Sprintf("(%s/%s)", nsCount(r.UserNs), nsCount(r.SysNs))
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", r.Mode+failedMark(r), kpps(r.VerdictedPPS), ratio, kpps(r.SentPPS),
			nsCount(r.ConsumerNs()), split, nsCount(r.GenNs), batch, r.KernelDrops, r.Left)
	}
	tw.Flush()

	if st.Latency {
		fmt.Fprintf(w, "\nlatency: ping-pong through the queue, %d round trips %s apart, against the same without a queue\n", st.LatencyN, st.LatencyGap)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "MODE\tRTT P50\tRTT P99\tADDED P50\tADDED P99\n")
		if r := s.NoQueue; r != nil && r.RTTP50Ns != nil {
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\n", r.Mode, usec(r.RTTP50Ns), usec(r.RTTP99Ns))
		}
		for _, r := range s.Modes {
			if r.RTTP50Ns == nil {
				fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\n", r.Mode, failedCell(r))
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Mode+failedMark(r), usec(r.RTTP50Ns), usec(r.RTTP99Ns), usec(r.AddedP50Ns), usec(r.AddedP99Ns))
		}
		tw.Flush()
	}

	fmt.Fprintln(w)
	for _, r := range s.Modes {
		if d := modeDesc[r.Mode]; d != "" {
			fmt.Fprintf(w, "  %-14s %s\n", r.Mode, d)
		}
	}
	for _, r := range s.Modes {
		if r.Failed > 0 {
			fmt.Fprintln(w, "  (!)            some rounds of the mode failed (see FAIL): its medians are of the others")
			break
		}
	}
	for _, n := range s.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	for _, f := range s.Failures {
		fmt.Fprintf(w, "FAIL: %s\n", f)
	}
	var end string
	switch {
	case s.Interrupted:
		end = "interrupted: the tables show what was measured before Ctrl-C"
	case s.OK:
		end = "every packet got a verdict"
	case len(s.Failures) == 1:
		end = "1 measurement FAILED"
	default:
		end = fmt.Sprintf("%d measurements FAILED", len(s.Failures))
	}
	if s.CleanedUp {
		end += "; the namespace and its rules are removed"
	}
	fmt.Fprintln(w, end)
}

// failedMark flags a row some of whose measurements failed.
func failedMark(r benchRow) string {
	if r.Failed > 0 {
		return " (!)"
	}
	return ""
}

// failedCell is what a row without any measurement shows.
func failedCell(r benchRow) string {
	if r.Failed > 0 {
		return "failed"
	}
	return "not measured"
}
