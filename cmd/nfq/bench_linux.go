package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/nfqueue-go/nfqueue"
	"github.com/nfqueue-go/nfqueue/rules"
	"golang.org/x/sys/unix"
)

// Ports of the benchmark, inside its own network namespace.
const (
	benchQueue     = 0
	benchFloodPort = 9000 // queued at output, dropped at input after the verdict
	benchBasePort  = 9001 // dropped at input, no queue: the generator's ceiling
	benchPingPort  = 9002 // queued at output: the ping-pong through the queue
	benchPingBase  = 9003 // no rule: the ping-pong baseline

	benchFloodDrop = "flood: drop after the verdict" // comment of the rule whose counter counts accepted packets

	// benchChildEnv, in the environment of nfq, makes it the consumer of
	// a benchmark (see init below) with the mode it holds.
	benchChildEnv = "NFQ_BENCH_CONSUMER"
	// benchChildNetNS is the consumer's descriptor of the namespace.
	benchChildNetNS = "/proc/self/fd/3"

	benchSendBatch = 64 // datagrams per sendmmsg
	benchSettle    = 200 * time.Millisecond
	benchDrainWait = 3 * time.Second
	benchMaxLost   = 10
	userHZ         = 100 // clock ticks per second of /proc/PID/stat (USER_HZ)
)

// benchModes are the consumers nfq bench can measure, in help order.
var benchModes = []struct{ name, desc string }{
	{"serve", "Conn.Serve, default Config: up to 64 packets per receive, their verdicts sent together"},
	{"serve-nobatch", "Conn.Serve with Config.DisableBatching: one sendmsg per verdict"},
	{"pull", "Conn.ReadPacket + Conn.SetVerdict: one receive and one verdict per call"},
	{"busypoll", "Conn.Serve with Config.BusyPoll: never sleeps in the kernel, spends its whole CPU"},
}

func benchModeDesc() map[string]string {
	m := map[string]string{}
	for _, x := range benchModes {
		m[x.name] = x.desc
	}
	return m
}

// A consumer is this same binary started with benchChildEnv set: it serves
// the queue and reports on standard output, and never reaches main.
func init() {
	if mode := os.Getenv(benchChildEnv); mode != "" {
		os.Exit(benchChild(mode))
	}
}

func benchCommand() *command {
	return &command{
		name:  "bench",
		short: "measure this library's packets per second, CPU time per packet and added latency here",
		usage: "bench [--mode LIST] [--duration D] [--size N] [--rounds N] [--latency=false] [--latency-n N] [--latency-gap D] [--json]",
		long: `Measures on this machine how fast the nfqueue library gives verdicts, what
each packet costs the consumer in CPU time, and how much round-trip latency a
queue adds. Nothing needs to be installed; everything nfq makes disappears at
the end, also on Ctrl-C and on error.

The setup: a throw-away network namespace (it has no name and dies with nfq)
with nftables rules made through netlink, for UDP to 127.0.0.1:
  9000  queued at output to queue 0, dropped at input after its verdict
  9001  dropped at input, no queue: how fast the generator alone sends
  9002  queued at output: the ping-pong through the queue
  9003  no rule: the ping-pong without a queue

Each round measures without a queue first, then each --mode in turn: nfq
starts the consumer, a child process of its own binary pinned to the second
CPU, which binds queue 0, copies whole packets and accepts every one; a
generator thread of nfq pinned to the first CPU floods port 9000 with
sendmmsg for --duration; nfq waits for the queue to drain, runs the
ping-pong, and stops the consumer. Rounds repeat the sequence (A B C A B C);
the tables show medians over rounds.

Modes:
  serve          Conn.Serve, default Config (verdicts of one receive sent together)
  serve-nobatch  Conn.Serve with Config.DisableBatching (one sendmsg per verdict)
  pull           Conn.ReadPacket + Conn.SetVerdict
  busypoll       Conn.Serve with Config.BusyPoll (spins: its CPU time is its CPU)

Columns:
  VERDICTED/S  packets given a verdict per second while the generator sent, from
               the kernel's counters (/proc/net/netfilter/nfnetlink_queue: last
               id - waiting - socket drops)
  SENT/S       datagrams the generator sent per second; with batching the
               generator, not the consumer, is usually the limit
  CONSUMER CPU the consumer process's CPU time, all its threads, user + system
               (/proc/PID/stat), per packet verdicted
  GEN CPU      the generator thread's CPU time per packet sent
  PKTS/BATCH   packets per VERDICT_BATCH message, from the library's counters
  DROPS        packets the kernel dropped: queue full + socket buffer full
  LEFT         packets still waiting for a verdict after the flood and 3s of
               draining: must be 0, nfq fails otherwise
  RTT, ADDED   ping-pong round trips through the queue, and minus the same
               without a queue in the same round

Needs root. On a virtual machine figures move by 10-20% between runs: compare
modes within one run, and use --rounds 3 for medians.`,
		setup: func(fs *flag.FlagSet, e *env) func(context.Context) error {
			o := &benchOpts{}
			fs.StringVar(&o.modes, "mode", "serve,pull", "comma-separated `modes` to measure: serve, serve-nobatch, pull, busypoll")
			fs.DurationVar(&o.duration, "duration", 5*time.Second, "flood time per mode and round")
			fs.IntVar(&o.size, "size", 64, "UDP payload `bytes` (8 to 65507)")
			fs.IntVar(&o.rounds, "rounds", 1, "rounds; each measures every mode once, in order, and the tables show medians")
			fs.BoolVar(&o.latency, "latency", true, "measure the round-trip latency the queue adds (--latency=false skips it)")
			fs.IntVar(&o.latencyN, "latency-n", 1000, "ping-pong round trips per mode and round")
			fs.DurationVar(&o.latencyGap, "latency-gap", time.Millisecond, "pause between round trips (0: back to back, the CPUs never go idle)")
			fs.BoolVar(&o.json, "json", false, "print one JSON object per measurement and a summary object last, instead of tables")
			return func(ctx context.Context) error { return runBench(ctx, e, o) }
		},
	}
}

type benchOpts struct {
	modes      string
	duration   time.Duration
	size       int
	rounds     int
	latency    bool
	latencyN   int
	latencyGap time.Duration
	json       bool
}

// parseBenchModes reads the --mode list.
func parseBenchModes(s string) ([]string, error) {
	var out []string
	for _, m := range strings.Split(s, ",") {
		m = strings.TrimSpace(m)
		known := false
		for _, x := range benchModes {
			known = known || x.name == m
		}
		switch {
		case !known:
			return nil, usagef("unknown mode %q (want serve, serve-nobatch, pull or busypoll)", m)
		case slices.Contains(out, m):
			return nil, usagef("mode %q given twice", m)
		}
		out = append(out, m)
	}
	return out, nil
}

func runBench(ctx context.Context, e *env, o *benchOpts) error {
	modes, err := parseBenchModes(o.modes)
	switch {
	case err != nil:
		return err
	case o.duration < 200*time.Millisecond || o.duration > time.Hour:
		return usagef("--duration must be between 200ms and 1h")
	case o.size < 8 || o.size > 65507:
		return usagef("--size must be between 8 and 65507 (UDP payload bytes)")
	case o.rounds < 1 || o.rounds > 100:
		return usagef("--rounds must be between 1 and 100")
	case o.latency && (o.latencyN < 1 || o.latencyN > 1000000):
		return usagef("--latency-n must be between 1 and 1000000")
	case o.latencyGap < 0 || o.latencyGap > time.Second:
		return usagef("--latency-gap must be between 0 and 1s")
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root: it creates a network namespace with rules and a queue, and reads the kernel's queue counters, which a user namespace hides")
	}
	b := &bench{e: e, o: o, modes: modes, out: &printer{w: e.stdout, json: o.json}, prog: &benchProgress{w: e.stderr, tty: isTerminal(e.stderr)}}
	b.machine = benchMachineInfo()
	defer b.cleanup()
	runErr := b.run(ctx)
	b.cleanup()
	b.prog.clear()

	interrupted := ctx.Err() != nil
	s := b.summary()
	s.Interrupted = interrupted
	s.CleanedUp = b.cleanErr == nil
	if runErr != nil && !interrupted {
		s.Failures = append(s.Failures, "the run stopped: "+oneLine(runErr.Error()))
		s.OK = false
	}
	if len(b.records) > 0 || interrupted || runErr == nil {
		var text bytes.Buffer
		writeBenchText(&text, s, benchModeDesc())
		b.out.line(strings.TrimSuffix(text.String(), "\n"), s)
	}
	switch {
	case b.cleanErr != nil:
		return fmt.Errorf("cleanup: %w", b.cleanErr)
	case interrupted:
		return errors.New("interrupted; the namespace and its rules are removed")
	case runErr != nil:
		return runErr
	case len(s.Failures) > 0:
		more := ""
		if len(s.Failures) > 1 {
			more = fmt.Sprintf(" (and %d more failures)", len(s.Failures)-1)
		}
		return errors.New(s.Failures[0] + more)
	}
	return nil
}

// bench is one run of nfq bench.
type bench struct {
	e       *env
	o       *benchOpts
	modes   []string
	out     *printer
	prog    *benchProgress
	machine benchMachine

	ns      *netNS
	tab     *rules.Table
	backend string
	cons    *benchConsumer // the running consumer
	records []benchRecord
	notes   []string

	cleaned  bool
	cleanErr error
}

func (b *bench) summary() *benchSummary {
	s := &benchSummary{Type: "summary", Machine: b.machine, Modes: []benchRow{}}
	s.Setup = benchSetup{
		Modes: b.modes, Rounds: b.o.rounds, Duration: b.o.duration.String(), Size: b.o.size,
		Latency: b.o.latency, Queue: benchQueue, Backend: b.backend,
	}
	if b.o.latency {
		s.Setup.LatencyN, s.Setup.LatencyGap = b.o.latencyN, b.o.latencyGap.String()
	}
	s.NoQueue, s.Modes, s.Failures = summarizeBench(b.records, b.modes)
	if s.Modes == nil {
		s.Modes = []benchRow{}
	}
	s.Notes = append(s.Notes, b.notes...)
	s.Notes = append(s.Notes, benchSpread(b.records, b.modes)...)
	if b.machine.GenCPU < 0 {
		s.Notes = append(s.Notes, "one CPU: the generator and the consumer share it, so the figures do not compare with those of a machine with two or more")
	}
	for _, r := range s.Modes {
		if r.Mode == "busypoll" && r.Rounds > 0 {
			s.Notes = append(s.Notes, "busypoll spins: it takes its whole CPU whatever the traffic, so its CPU time per packet is that CPU divided by the packets")
			break
		}
	}
	s.OK = len(s.Failures) == 0 && len(b.records) > 0
	return s
}

// cleanup stops the consumer and removes the rules and the namespace; it
// may run more than once.
func (b *bench) cleanup() {
	if b.cleaned {
		return
	}
	b.cleaned = true
	var errs []error
	if b.cons != nil {
		b.cons.stop(2 * time.Second)
		b.cons = nil
	}
	if b.tab != nil {
		errs = append(errs, b.tab.Close())
	}
	if b.ns != nil {
		errs = append(errs, b.ns.Close())
	}
	b.cleanErr = errors.Join(errs...)
	b.e.log.Debug("benchmark namespace removed", "err", b.cleanErr)
}

// run sets up the namespace and measures every round.
func (b *bench) run(ctx context.Context) error {
	pin := "not pinned (one CPU)"
	if b.machine.GenCPU >= 0 {
		pin = fmt.Sprintf("generator on CPU %d, consumer on CPU %d", b.machine.GenCPU, b.machine.ConsumerCPU)
	}
	b.prog.println(fmt.Sprintf("nfq bench: modes %s, %d round(s) of %v per mode, payload %d B, %s; Ctrl-C stops and prints what was measured",
		strings.Join(b.modes, ","), b.o.rounds, b.o.duration, b.o.size, pin))
	var err error
	if b.ns, err = newNetNS("bench"); err != nil {
		return fmt.Errorf("network namespace: %w", err)
	}
	if b.tab, err = rules.Open(&rules.Config{Table: "nfq-bench", NetNSFd: b.ns.Fd()}); err != nil {
		return fmt.Errorf("rules: %w", err)
	}
	b.backend = b.tab.Backend().String()
	udp := func(port uint16) rules.Match { return rules.Match{Proto: rules.ProtoUDP, DstPort: rules.Port(port)} }
	chains := []struct {
		c  rules.Chain
		rs []rules.Rule
	}{
		{rules.Chain{Hook: rules.HookOutput, Priority: rules.PriorityFilter}, []rules.Rule{
			{Match: udp(benchFloodPort), Queue: rules.Queue{Num: benchQueue}, Comment: "flood to the queue"},
			{Match: udp(benchPingPort), Queue: rules.Queue{Num: benchQueue}, Comment: "ping-pong through the queue"},
		}},
		{rules.Chain{Hook: rules.HookInput, Priority: rules.PriorityFilter}, []rules.Rule{
			{Match: udp(benchFloodPort), Action: rules.ActionDrop, Comment: benchFloodDrop},
			{Match: udp(benchBasePort), Action: rules.ActionDrop, Comment: "flood without a queue"},
		}},
	}
	for _, ch := range chains {
		if err := b.tab.Add(ch.c, ch.rs...); err != nil {
			return fmt.Errorf("rules: %w", err)
		}
	}
	b.prog.println(fmt.Sprintf("nfq bench: namespace ready, rules in table nfq-bench (%s backend)", b.backend))

	for round := 1; round <= b.o.rounds; round++ {
		if err := b.noQueue(ctx, round); err != nil {
			return err
		}
		for _, m := range b.modes {
			if err := b.mode(ctx, round, m); err != nil {
				return err
			}
		}
	}
	return nil
}

// label names a measurement in progress lines.
func (b *bench) label(round int, mode string) string {
	return fmt.Sprintf("round %d/%d  %-13s", round, b.o.rounds, mode)
}

// finish records a measurement and reports it.
func (b *bench) finish(rec benchRecord) {
	b.records = append(b.records, rec)
	if b.o.json {
		b.out.line("", &rec)
	}
	b.prog.println(b.label(rec.Round, rec.Mode) + " " + benchRecordLine(&rec))
}

// benchRecordLine is the progress line of a finished measurement.
func benchRecordLine(r *benchRecord) string {
	var parts []string
	if t := r.Throughput; t != nil {
		if r.Mode == benchNoQueue {
			parts = append(parts, fmt.Sprintf("sent %s/s, generator %s ns/pkt", kpps(t.SentPPS), nsCount(t.GenNs)))
		} else {
			parts = append(parts, fmt.Sprintf("%s/s verdicted (sent %s/s), consumer %s ns/pkt (%s/%s), %d drops, %d left",
				kpps(t.VerdictedPPS), kpps(t.SentPPS), nsCount(t.UserNs+t.SysNs), nsCount(t.UserNs), nsCount(t.SysNs),
				t.QueueDropped+t.SocketDropped, t.Left))
		}
	}
	if l := r.Latency; l != nil {
		p50, p99 := l.P50Ns, l.P99Ns
		parts = append(parts, fmt.Sprintf("rtt p50 %s p99 %s", usec(&p50), usec(&p99)))
	}
	if r.Error != "" {
		parts = append(parts, "FAILED: "+r.Error)
	}
	return strings.Join(parts, "; ")
}

// noQueue measures the flood and the ping-pong without a queue.
func (b *bench) noQueue(ctx context.Context, round int) error {
	rec := benchRecord{Type: "measurement", Round: round, Mode: benchNoQueue}
	label := b.label(round, benchNoQueue)
	b.prog.phase(label + " flooding for " + b.o.duration.String())
	g, err := b.flood(ctx, benchBasePort, nil, nil, func(sent uint64, el time.Duration) string {
		return fmt.Sprintf("%s %4.1fs/%v  sent %s/s", label, el.Seconds(), b.o.duration, kpps(float64(sent)/el.Seconds()))
	})
	if err != nil {
		return err
	}
	rec.Throughput = &benchTput{Sent: g.sent, SentPPS: g.pps(), WindowS: g.elapsed.Seconds(), GenNs: g.nsPerPkt(), SendErrors: g.errs}
	if b.o.latency {
		l, err := b.pingPong(ctx, benchPingBase, label)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			rec.Error = "ping-pong without a queue: " + err.Error()
		}
		rec.Latency = l
	}
	b.finish(rec)
	return nil
}

// benchSnap is the state of the queue and of the consumer at one moment.
type benchSnap struct {
	t         time.Time
	k         nfqueue.KernelStats
	user, sys uint64 // the consumer's CPU time in clock ticks
}

// verdicted counts the packets that got an id, were not lost on the way to
// the socket and no longer wait: those that got a verdict.
func (s *benchSnap) verdicted() uint32 { return s.k.LastID - s.k.Waiting - s.k.UserDropped }

// kernelLine returns the kernel's line of the queue; ok is false when the
// queue is not bound.
func (b *bench) kernelLine() (k nfqueue.KernelStats, ok bool, err error) {
	all, err := nfqueue.ReadKernelStats(b.ns.Path())
	if errors.Is(err, fs.ErrNotExist) {
		return k, false, nil // nfnetlink_queue not loaded: nothing bound
	}
	if err != nil {
		return k, false, fmt.Errorf("reading the kernel's queue counters: %w", err)
	}
	for _, q := range all {
		if q.Queue == benchQueue {
			return q, true, nil
		}
	}
	return k, false, nil
}

func (b *bench) snap(c *benchConsumer) (benchSnap, error) {
	s := benchSnap{t: time.Now()}
	k, ok, err := b.kernelLine()
	if err == nil && !ok {
		err = errors.New("the queue is no longer bound")
	}
	if err != nil {
		return s, err
	}
	s.k = k
	s.user, s.sys, err = procCPUTicks(c.cmd.Process.Pid)
	return s, err
}

// waitQueue polls the queue's kernel line until cond holds or limit passes.
func (b *bench) waitQueue(ctx context.Context, limit time.Duration, cond func(k nfqueue.KernelStats, ok bool) bool) (nfqueue.KernelStats, bool, error) {
	deadline := time.Now().Add(limit)
	for {
		k, ok, err := b.kernelLine()
		if err != nil || cond(k, ok) {
			return k, ok, err
		}
		if time.Now().After(deadline) {
			return k, ok, errTimeout
		}
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return k, ok, err
		}
	}
}

var errTimeout = errors.New("timed out")

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// acceptedCount returns the counter of the input rule that drops the flood
// after its verdict: the packets the queue accepted.
func (b *bench) acceptedCount() (uint64, error) {
	ris, err := b.tab.Rules()
	if err != nil {
		return 0, fmt.Errorf("reading the rules' counters: %w", err)
	}
	for _, ri := range ris {
		if ri.Comment == benchFloodDrop {
			return ri.Packets, nil
		}
	}
	return 0, errors.New("the counting rule is missing")
}

// mode measures one mode in one round. Failures of the measurement end up
// in its record; errors that make going on pointless are returned.
func (b *bench) mode(ctx context.Context, round int, mode string) error {
	rec := benchRecord{Type: "measurement", Round: round, Mode: mode}
	label := b.label(round, mode)
	b.prog.phase(label + " starting the consumer")
	// The previous consumer's queue must be gone.
	if _, _, err := b.waitQueue(ctx, 3*time.Second, func(_ nfqueue.KernelStats, ok bool) bool { return !ok }); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("queue %d is still bound before %s: %w", benchQueue, mode, err)
	}
	c, err := startBenchConsumer(b.ns, mode, b.machine.ConsumerCPU)
	if err != nil {
		return fmt.Errorf("starting the %s consumer: %w", mode, err)
	}
	b.cons = c
	defer func() {
		if b.cons == c {
			c.stop(2 * time.Second)
			b.cons = nil
		}
	}()
	if err := c.waitReady(ctx, 10*time.Second); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%s consumer: %w", mode, err)
	}
	first, _, err := b.waitQueue(ctx, 2*time.Second, func(k nfqueue.KernelStats, ok bool) bool {
		return ok && k.PortID == c.portID && k.CopyMode == 2
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%s consumer: the kernel does not show queue %d bound to it in packet copy mode: %w", mode, benchQueue, err)
	}
	if err := sleepCtx(ctx, benchSettle); err != nil {
		return err
	}
	acc0, err := b.acceptedCount()
	if err != nil {
		return err
	}

	// The flood, between two snapshots.
	b.prog.phase(label + " flooding for " + b.o.duration.String())
	var s0, s1 benchSnap
	var snapErr error
	take := func(s *benchSnap) func() {
		return func() {
			var err error
			if *s, err = b.snap(c); err != nil && snapErr == nil {
				snapErr = err
			}
		}
	}
	g, err := b.flood(ctx, benchFloodPort, take(&s0), take(&s1), func(sent uint64, el time.Duration) string {
		line := fmt.Sprintf("%s %4.1fs/%v  sent %s/s", label, el.Seconds(), b.o.duration, kpps(float64(sent)/el.Seconds()))
		if k, ok, err := b.kernelLine(); err == nil && ok {
			now := benchSnap{k: k}
			line += fmt.Sprintf("  verdicted %s/s  waiting %d  drops %d", kpps(float64(now.verdicted()-s0.verdicted())/el.Seconds()),
				k.Waiting, (k.QueueDropped-first.QueueDropped)+(k.UserDropped-first.UserDropped))
		}
		return line
	})
	if err != nil {
		return err
	}
	if snapErr != nil || c.exited() {
		rec.Error = fmt.Sprintf("the consumer failed during the flood: %v", firstNonNil(snapErr, c.exitErr()))
		b.finish(rec)
		return nil
	}

	// Let the consumer give its verdicts to what is still queued.
	b.prog.phase(label + " draining")
	last, bound, err := b.waitQueue(ctx, benchDrainWait, func(k nfqueue.KernelStats, ok bool) bool { return !ok || k.Waiting == 0 })
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil && !errors.Is(err, errTimeout) {
		return err
	}
	if !bound {
		rec.Error = fmt.Sprintf("the queue vanished while draining: %v", c.exitErr())
		b.finish(rec)
		return nil
	}
	// Packets accepted last may still be on their way to the input rule.
	if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
		return err
	}
	acc1, err := b.acceptedCount()
	if err != nil {
		return err
	}
	t := &benchTput{Sent: g.sent, SentPPS: g.pps(), GenNs: g.nsPerPkt(), SendErrors: g.errs}
	t.Verdicted = uint64(s1.verdicted() - s0.verdicted())
	t.WindowS = s1.t.Sub(s0.t).Seconds()
	if t.WindowS > 0 {
		t.VerdictedPPS = float64(t.Verdicted) / t.WindowS
	}
	if t.Verdicted > 0 {
		tick := 1e9 / float64(userHZ)
		t.UserNs = float64(s1.user-s0.user) * tick / float64(t.Verdicted)
		t.SysNs = float64(s1.sys-s0.sys) * tick / float64(t.Verdicted)
	}
	t.QueueDropped = uint64(last.QueueDropped - first.QueueDropped)
	t.SocketDropped = uint64(last.UserDropped - first.UserDropped)
	t.Left = last.Waiting
	ids := uint64(last.LastID - first.LastID)
	t.Unaccounted = int64(ids) - int64(t.SocketDropped) - int64(acc1-acc0) - int64(last.Waiting)
	rec.Throughput = t
	switch {
	case t.Left > 0:
		rec.Error = fmt.Sprintf("%d packets left without a verdict %v after the flood", t.Left, benchDrainWait)
	case t.Verdicted == 0:
		rec.Error = "no packet got a verdict during the flood"
	}
	if t.Unaccounted != 0 {
		rec.Notes = append(rec.Notes, fmt.Sprintf("%d of %d packet ids not accounted for (socket drops %d, accepted at input %d, waiting %d)",
			t.Unaccounted, ids, t.SocketDropped, acc1-acc0, last.Waiting))
	}

	if b.o.latency && rec.Error == "" {
		l, err := b.pingPong(ctx, benchPingPort, label)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			rec.Error = "ping-pong through the queue: " + err.Error()
		}
		rec.Latency = l
	}

	// What the kernel queued over the consumer's life, to compare with
	// what the library counted.
	final, ok, ferr := b.kernelLine()
	b.cons = nil
	lib, serr := c.stop(3 * time.Second)
	rec.Library = lib
	switch {
	case serr != nil:
		rec.Notes = append(rec.Notes, "stopping the consumer: "+serr.Error())
	case ferr == nil && ok && final.Waiting == 0 && lib != nil:
		want := uint64(final.LastID-first.LastID) - uint64(final.UserDropped-first.UserDropped)
		if lib.Received != want || lib.Accepted != lib.Received {
			rec.Notes = append(rec.Notes, fmt.Sprintf("the library received %d packets and accepted %d; the kernel queued %d to its socket", lib.Received, lib.Accepted, want))
		}
	}
	for _, n := range rec.Notes {
		b.notes = append(b.notes, fmt.Sprintf("%s, round %d: %s", mode, round, n))
	}
	b.finish(rec)
	return nil
}

func firstNonNil(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return errors.New("unknown")
}

// benchGen is what one flood sent.
type benchGen struct {
	sent, calls uint64
	errs        map[string]uint64
	elapsed     time.Duration
	cpu         time.Duration // the generator thread's CPU time
}

func (g *benchGen) pps() float64 {
	if g.elapsed <= 0 {
		return 0
	}
	return float64(g.sent) / g.elapsed.Seconds()
}

func (g *benchGen) nsPerPkt() float64 {
	if g.sent == 0 {
		return 0
	}
	return float64(g.cpu.Nanoseconds()) / float64(g.sent)
}

// benchMmsghdr is struct mmsghdr: Go pads it to the alignment of
// unix.Msghdr as C does.
type benchMmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// pinThread locks the calling goroutine to its thread (for good: the
// caller lets the goroutine end without unlocking, so that the thread with
// its changed affinity ends too) and binds the thread to cpu; cpu < 0
// only locks.
func pinThread(cpu int) error {
	runtime.LockOSThread()
	if cpu < 0 {
		return nil
	}
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pin to CPU %d: %w", cpu, err)
	}
	return nil
}

// flood sends UDP datagrams to 127.0.0.1:port inside the namespace for
// --duration from a thread pinned to the generator CPU. atStart runs right
// before the first send, atEnd right after the last; status returns the
// live progress line.
func (b *bench) flood(ctx context.Context, port int, atStart, atEnd func(), status func(sent uint64, elapsed time.Duration) string) (*benchGen, error) {
	fd, err := inNS(b.ns, func() (int, error) {
		return unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	})
	if err != nil {
		return nil, fmt.Errorf("generator socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return nil, fmt.Errorf("generator socket: %w", err)
	}
	// A queued datagram still counts against the send buffer: without a
	// timeout, a consumer that stopped reading would block the sender
	// for good.
	tv := unix.NsecToTimeval((200 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		return nil, fmt.Errorf("generator socket: %w", err)
	}

	var sent atomic.Uint64
	var stop atomic.Bool
	defer context.AfterFunc(ctx, func() { stop.Store(true) })()
	ready := make(chan error, 1)
	start := make(chan struct{})
	res := make(chan *benchGen, 1)
	go func() {
		if err := pinThread(b.machine.GenCPU); err != nil {
			ready <- err
			return
		}
		ready <- nil
		<-start
		res <- sendLoop(fd, b.o.size, b.o.duration, &sent, &stop)
	}()
	if err := <-ready; err != nil {
		return nil, err
	}
	if atStart != nil {
		atStart()
	}
	t0 := time.Now()
	close(start)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case g := <-res:
			if atEnd != nil {
				atEnd()
			}
			if ctx.Err() != nil {
				return g, ctx.Err()
			}
			return g, nil
		case <-tick.C:
			if b.prog.tty {
				b.prog.status(status(sent.Load(), time.Since(t0)))
			}
		}
	}
}

// sendLoop is the generator: sendmmsg of benchSendBatch datagrams on a
// connected socket, as fast as the kernel takes them, until dur passed or
// stop is set.
func sendLoop(fd, size int, dur time.Duration, sent *atomic.Uint64, stop *atomic.Bool) *benchGen {
	payload := make([]byte, size)
	iov := unix.Iovec{Base: &payload[0]}
	iov.SetLen(size)
	msgs := make([]benchMmsghdr, benchSendBatch)
	for i := range msgs {
		msgs[i].hdr.Iov = &iov
		msgs[i].hdr.SetIovlen(1)
	}
	g := &benchGen{errs: map[string]uint64{}}
	var ru0, ru1 unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_THREAD, &ru0)
	t0 := time.Now()
	deadline := t0.Add(dur)
	for i := 0; ; i++ {
		if i&15 == 0 && (stop.Load() || !time.Now().Before(deadline)) {
			break
		}
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), 0, 0, 0)
		g.calls++
		if e != 0 {
			// EAGAIN: the send buffer stayed full for the timeout;
			// ENOBUFS, EPERM: the kernel dropped the datagram. Go on,
			// but look at the clock.
			g.errs[e.Error()]++
			i = -1
			continue
		}
		g.sent += uint64(n)
		sent.Add(uint64(n))
	}
	g.elapsed = time.Since(t0)
	_ = unix.Getrusage(unix.RUSAGE_THREAD, &ru1)
	g.cpu = time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	runtime.KeepAlive(payload)
	runtime.KeepAlive(&iov)
	runtime.KeepAlive(msgs)
	if len(g.errs) == 0 {
		g.errs = nil
	}
	return g
}

// pingPong measures round trips to 127.0.0.1:port in the namespace: a
// client socket sends one datagram to a server socket, which echoes it;
// only the way there matches the queue rule. Both sockets block and are
// served by one thread pinned to the generator CPU, so no goroutine
// hand-off is measured.
func (b *bench) pingPong(ctx context.Context, port int, label string) (*benchLat, error) {
	n := b.o.latencyN
	warmup := min(200, max(10, n/10))
	b.prog.phase(fmt.Sprintf("%s ping-pong, %d round trips", label, n))
	type socks struct{ srv, cli int }
	s, err := inNS(b.ns, func() (socks, error) {
		srv, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return socks{}, err
		}
		cli, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			unix.Close(srv)
			return socks{}, err
		}
		return socks{srv, cli}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("ping-pong socket: %w", err)
	}
	defer unix.Close(s.srv)
	defer unix.Close(s.cli)
	addr := &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}
	if err := unix.Bind(s.srv, addr); err != nil {
		return nil, fmt.Errorf("ping-pong: bind 127.0.0.1:%d: %w", port, err)
	}
	if err := unix.Connect(s.cli, addr); err != nil {
		return nil, fmt.Errorf("ping-pong: %w", err)
	}
	tv := unix.NsecToTimeval(time.Second.Nanoseconds())
	for _, fd := range []int{s.srv, s.cli} {
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return nil, fmt.Errorf("ping-pong: %w", err)
		}
	}

	var done atomic.Int64
	var stop atomic.Bool
	defer context.AfterFunc(ctx, func() { stop.Store(true) })()
	type result struct {
		l   *benchLat
		err error
	}
	res := make(chan result, 1)
	go func() {
		if err := pinThread(b.machine.GenCPU); err != nil {
			res <- result{err: err}
			return
		}
		out := make([]byte, b.o.size)
		in := make([]byte, 65536)
		rtts := make([]int64, 0, n)
		lost := 0
		for i := 0; i < warmup+n && !stop.Load(); i++ {
			if lost >= benchMaxLost {
				res <- result{err: fmt.Errorf("%d round trips lost (of %d); giving up", lost, i)}
				return
			}
			if b.o.latencyGap > 0 {
				time.Sleep(b.o.latencyGap)
			}
			seq := uint64(i)
			putSeq(out, seq)
			t0 := time.Now()
			if _, err := unix.Write(s.cli, out); err != nil {
				lost++
				continue
			}
			m, from, err := unix.Recvfrom(s.srv, in, 0)
			if err != nil {
				lost++
				continue
			}
			if err := unix.Sendto(s.srv, in[:m], 0, from); err != nil {
				lost++
				continue
			}
			ok := false
			for {
				m, err = unix.Read(s.cli, in)
				if err != nil {
					break
				}
				if m >= 8 && getSeq(in) == seq {
					ok = true
					break
				}
			}
			rtt := time.Since(t0)
			if !ok {
				lost++
				continue
			}
			if i >= warmup {
				rtts = append(rtts, rtt.Nanoseconds())
				done.Add(1)
			}
		}
		if len(rtts) == 0 {
			res <- result{err: errors.New("no round trip completed")}
			return
		}
		slices.Sort(rtts)
		res <- result{l: &benchLat{N: len(rtts), Lost: lost, P50Ns: percentile(rtts, 0.50), P90Ns: percentile(rtts, 0.90),
			P99Ns: percentile(rtts, 0.99), MaxNs: float64(rtts[len(rtts)-1])}}
	}()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case r := <-res:
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return r.l, r.err
		case <-tick.C:
			if b.prog.tty {
				b.prog.status(fmt.Sprintf("%s ping-pong %d/%d", label, done.Load(), n))
			}
		}
	}
}

func putSeq(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (8 * i))
	}
}

func getSeq(b []byte) uint64 {
	var v uint64
	for i := range 8 {
		v |= uint64(b[i]) << (8 * i)
	}
	return v
}

// procCPUTicks returns the user and system CPU time of process pid, all
// its threads, in clock ticks (fields 14 and 15 of /proc/PID/stat).
func procCPUTicks(pid int) (user, sys uint64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	return parseProcStatCPU(b)
}

func parseProcStatCPU(b []byte) (user, sys uint64, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errors.New("/proc/PID/stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, 0, errors.New("/proc/PID/stat: too few fields")
	}
	if user, err = strconv.ParseUint(f[11], 10, 64); err == nil {
		sys, err = strconv.ParseUint(f[12], 10, 64)
	}
	return user, sys, err
}

// benchMachineInfo describes this machine and picks the CPUs: the first
// two this process may run on.
func benchMachineInfo() benchMachine {
	m := benchMachine{CPUs: runtime.NumCPU(), Go: runtime.Version(), GenCPU: -1, ConsumerCPU: -1}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
	}
	var set unix.CPUSet
	if unix.SchedGetaffinity(0, &set) == nil {
		var cpus []int
		for i := 0; i < 1024 && len(cpus) < 2; i++ {
			if set.IsSet(i) {
				cpus = append(cpus, i)
			}
		}
		if len(cpus) == 2 {
			m.GenCPU, m.ConsumerCPU = cpus[0], cpus[1]
		}
	}
	return m
}

// benchProgress shows what the benchmark is doing on standard error: on a
// terminal a live status line, otherwise plain lines.
type benchProgress struct {
	mu   sync.Mutex
	w    io.Writer
	tty  bool
	live bool // a status line is shown
}

// status replaces the live line (terminal only).
func (p *benchProgress) status(s string) {
	if !p.tty {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "\r\033[K%s", s)
	p.live = true
}

// phase announces a step: the live line on a terminal, a line otherwise.
func (p *benchProgress) phase(s string) {
	if p.tty {
		p.status(s)
		return
	}
	p.println(s)
}

// println prints a line that stays.
func (p *benchProgress) println(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live {
		fmt.Fprint(p.w, "\r\033[K")
		p.live = false
	}
	fmt.Fprintln(p.w, s)
}

// clear removes the live line.
func (p *benchProgress) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live {
		fmt.Fprint(p.w, "\r\033[K")
		p.live = false
	}
}

// benchEvent is a line the consumer prints on its standard output.
type benchEvent struct {
	Event   string    `json:"event"` // ready, done, error
	PortID  uint32    `json:"portid,omitempty"`
	Library *benchLib `json:"library,omitempty"`
	Error   string    `json:"error,omitempty"`
}

// benchConsumer is a running consumer: a child process of this binary.
type benchConsumer struct {
	mode    string
	cmd     *exec.Cmd
	stdin   *os.File // closing it stops the consumer
	events  chan benchEvent
	done    chan struct{} // closed when the process was waited for
	waitErr error
	stderr  *benchTail
	portID  uint32
	once    sync.Once
	lib     *benchLib
}

// startBenchConsumer starts a consumer in mode, in namespace ns, with every
// thread bound to cpu (unless cpu < 0): it is started from a thread bound
// to cpu, whose affinity it inherits, like taskset.
func startBenchConsumer(ns *netNS, mode string, cpu int) (*benchConsumer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	c := &benchConsumer{mode: mode, stdin: inW, events: make(chan benchEvent, 8), done: make(chan struct{}), stderr: &benchTail{}}
	c.cmd = &exec.Cmd{
		Path:       exe,
		Args:       []string{"nfq", "bench-consumer", mode},
		Env:        append(os.Environ(), benchChildEnv+"="+mode),
		Stdin:      inR,
		Stdout:     outW,
		Stderr:     c.stderr,
		ExtraFiles: []*os.File{ns.f}, // descriptor 3: benchChildNetNS
		// Should nfq die, so does the consumer. The signal comes when
		// the thread that started it ends: that thread waits for it.
		SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	}
	started := make(chan error, 1)
	go func() {
		// Never unlocked: the thread ends with this goroutine, after
		// the consumer.
		if err := pinThread(cpu); err != nil {
			started <- err
			return
		}
		if err := c.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		c.waitErr = c.cmd.Wait()
		close(c.done)
	}()
	err = <-started
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, err
	}
	go func() {
		defer close(c.events)
		defer outR.Close()
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			var ev benchEvent
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Event != "" {
				c.events <- ev
			}
		}
	}()
	return c, nil
}

// waitReady waits until the consumer has bound the queue.
func (c *benchConsumer) waitReady(ctx context.Context, limit time.Duration) error {
	t := time.NewTimer(limit)
	defer t.Stop()
	for {
		select {
		case ev, ok := <-c.events:
			switch {
			case !ok:
				<-c.done
				return fmt.Errorf("exited before binding the queue: %v", c.exitErr())
			case ev.Event == "ready":
				c.portID = ev.PortID
				return nil
			case ev.Event == "error":
				return errors.New(ev.Error)
			}
		case <-t.C:
			return fmt.Errorf("did not bind the queue within %v", limit)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (c *benchConsumer) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// exitErr describes how the consumer ended, with the end of its stderr.
func (c *benchConsumer) exitErr() error {
	if !c.exited() {
		return errors.New("the consumer is still running")
	}
	msg := "exited"
	if c.waitErr != nil {
		msg = c.waitErr.Error()
	}
	if s := strings.TrimSpace(c.stderr.String()); s != "" {
		msg += ": " + s
	}
	return errors.New(msg)
}

// stop asks the consumer to stop (by closing its standard input), waits up
// to grace for it to report its counters and exit, and kills it if it does
// not. It returns the library's counters.
func (c *benchConsumer) stop(grace time.Duration) (*benchLib, error) {
	var err error
	c.once.Do(func() {
		c.stdin.Close()
		t := time.NewTimer(grace)
		defer t.Stop()
	events:
		for {
			select {
			case ev, ok := <-c.events:
				if !ok {
					break events
				}
				if ev.Event == "done" {
					c.lib = ev.Library
					if ev.Error != "" {
						err = errors.New(ev.Error)
					}
				}
			case <-t.C:
				break events
			}
		}
		select {
		case <-c.done:
		case <-t.C:
		}
		if !c.exited() {
			_ = c.cmd.Process.Kill()
			<-c.done
			err = fmt.Errorf("the %s consumer did not exit within %v and was killed", c.mode, grace)
			return
		}
		if err == nil && c.waitErr != nil {
			err = c.exitErr()
		}
		if err == nil && c.lib == nil {
			err = errors.New("the consumer exited without its counters")
		}
	})
	return c.lib, err
}

// benchTail keeps the last 2 KiB written to it.
type benchTail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *benchTail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2048 {
		t.buf = t.buf[len(t.buf)-2048:]
	}
	return len(p), nil
}

func (t *benchTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// benchChild is the consumer process: it binds the queue in the namespace
// at descriptor 3, accepts every packet until its standard input closes
// (or SIGTERM), and prints its counters. It returns the exit status.
func benchChild(mode string) int {
	// Ctrl-C on a terminal reaches the whole process group: the parent
	// decides when the consumer stops.
	signal.Ignore(syscall.SIGINT, syscall.SIGHUP, syscall.SIGPIPE)
	var mu sync.Mutex
	emit := func(ev benchEvent) {
		mu.Lock()
		defer mu.Unlock()
		b, _ := json.Marshal(ev)
		_, _ = os.Stdout.Write(append(b, '\n'))
	}
	var errCount atomic.Uint64
	cfg := &nfqueue.Config{NetNS: benchChildNetNS, BindRetry: 3 * time.Second, OnError: func(error) { errCount.Add(1) }}
	switch mode {
	case "serve", "pull":
	case "serve-nobatch":
		cfg.DisableBatching = true
	case "busypoll":
		cfg.BusyPoll = true
	default:
		emit(benchEvent{Event: "error", Error: "unknown mode " + mode})
		return 2
	}
	conn, err := nfqueue.Open(benchQueue, cfg)
	if err != nil {
		emit(benchEvent{Event: "error", Error: err.Error()})
		return 1
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	emit(benchEvent{Event: "ready", PortID: conn.PortID()})

	if mode == "pull" {
		err = benchPull(ctx, conn, &errCount)
	} else {
		err = conn.Serve(ctx, func(*nfqueue.Packet) nfqueue.Verdict { return nfqueue.Accept })
		if errors.Is(err, context.Canceled) {
			err = nil
		}
	}
	st := conn.Stats()
	conn.Close()
	ev := benchEvent{Event: "done", Library: &benchLib{
		Received: st.Received, Accepted: st.Accepted, BatchVerdicts: st.BatchVerdicts, Overruns: st.Overruns,
		VerdictErrors: st.VerdictErrors, Malformed: st.Malformed, Outstanding: st.Outstanding, Errors: errCount.Load(),
	}}
	if err != nil {
		ev.Error = err.Error()
	}
	emit(ev)
	if err != nil {
		return 1
	}
	return 0
}

// benchPull reads packets one at a time and accepts each with its own
// verdict until ctx is done.
func benchPull(ctx context.Context, conn *nfqueue.Conn, errCount *atomic.Uint64) error {
	// Closing the Conn is what ends a blocked ReadPacket.
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	var p nfqueue.Packet
	for {
		if err := conn.ReadPacket(&p); err != nil {
			if errors.Is(err, nfqueue.ErrClosed) {
				return nil
			}
			errCount.Add(1) // overruns do not end reading
			continue
		}
		if err := conn.SetVerdict(p.ID, nfqueue.Accept); err != nil {
			if errors.Is(err, nfqueue.ErrClosed) {
				return nil
			}
			errCount.Add(1)
		}
	}
}
