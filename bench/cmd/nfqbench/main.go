// Command nfqbench runs the side-by-side NFQUEUE benchmark: several
// consumers (C on libnetfilter_queue and on libmnl, Go libraries, this
// module's library in each of its modes) take turns draining one queue fed
// by a UDP flood over loopback, and the kernel's own counters tell how many
// packets each one verdicted per second, at what CPU cost, with how many
// drops. A ping-pong test through the queue measures the round-trip latency
// each consumer adds.
//
// Run it as root from the bench directory:
//
//	go run ./cmd/nfqbench -rounds 3 -seconds 5
//
// Everything happens inside a network namespace created for the run and
// deleted at the end (also on Ctrl-C, on failure and on timeout): the
// iptables rules, the traffic (127.0.0.1 only) and the consumers.
// The generator runs on CPU 0 and the consumer on CPU 1 (see -gen-cpu and
// -consumer-cpu). The result is a Markdown report on stdout (and -out).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// consumer is one program under test. It is started as
// BIN [ARGS...] QUEUE_NUM, must copy whole packets, accept every packet and
// exit on SIGTERM.
type consumer struct {
	key   string   // name on the command line
	label string   // name in the report
	bin   string   // binary in the bin directory
	args  []string // arguments before the queue number
	env   []string
	// busy marks a consumer that spends a whole CPU polling: it only takes
	// part in the latency test.
	busy bool

	buildErr error
}

var allConsumers = []*consumer{
	{key: "c-classic", label: "C libnetfilter_queue, classic (recv + verdict per packet)", bin: "nfq_classic"},
	{key: "c-mnl-batch", label: "C libmnl, recvmmsg + one VERDICT_BATCH per drain", bin: "mnl_batch"},
	{key: "c-mnl-busypoll", label: "C libmnl, busy-poll recvmmsg + VERDICT_BATCH", bin: "mnl_busypoll", busy: true},
	{key: "ours-serve", label: "ours: Serve, default Config", bin: "ours", args: []string{"-mode", "serve"}},
	{key: "ours-serve-nobatch", label: "ours: Serve, DisableBatching", bin: "ours", args: []string{"-mode", "serve-nobatch"}},
	{key: "ours-pull", label: "ours: ReadPacket + SetVerdict", bin: "ours", args: []string{"-mode", "pull"}},
	{key: "ours-busypoll", label: "ours: Serve, BusyPoll", bin: "ours", args: []string{"-mode", "serve-busypoll"}, busy: true},
	{key: "nfqueue-go", label: "nfqueue-go (cgo over libnetfilter_queue)", bin: "nfqueuego", env: []string{"GODEBUG=cgocheck=0"}},
	{key: "go-nfqueue", label: "go-nfqueue v2.1.0 (mdlayher/netlink)", bin: "gonfqueue"},
}

const (
	refClassic = "c-classic"
	refBatch   = "c-mnl-batch"
	refBusy    = "c-mnl-busypoll"
)

type options struct {
	dir        string
	rounds     int
	seconds    float64
	size       int
	queue      int
	port       int
	genCPU     int
	consCPU    int
	consumers  string
	genSndbuf  int
	latN       int
	latGap     time.Duration
	noLatency  bool
	noInstall  bool
	noBuild    bool
	out        string
	jsonOut    string
	timeout    time.Duration
	drainWait  time.Duration
	readyWait  time.Duration
	stopWait   time.Duration
	settle     time.Duration
	listOnly   bool
	quietWait  time.Duration
	quietMax   float64
	noiseMax   float64
	retries    int
	noSyscalls bool
}

func main() { os.Exit(realMain()) }

func realMain() int {
	var o options
	flag.StringVar(&o.dir, "dir", ".", "the bench directory (holds go.mod, c/, consumers/)")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; each round runs every consumer once, in order")
	flag.Float64Var(&o.seconds, "seconds", 5, "flood duration per consumer and round, in seconds")
	flag.IntVar(&o.size, "size", 64, "UDP payload bytes")
	flag.IntVar(&o.queue, "queue", 0, "NFQUEUE number")
	flag.IntVar(&o.port, "port", 9000, "first of the 4 UDP ports used (flood, baseline flood, ping-pong, ping-pong baseline)")
	flag.IntVar(&o.genCPU, "gen-cpu", 0, "CPU for the traffic generator")
	flag.IntVar(&o.consCPU, "consumer-cpu", 1, "CPU for the consumer")
	flag.StringVar(&o.consumers, "consumers", "all", "comma-separated consumers to run, or all (see -list)")
	flag.IntVar(&o.genSndbuf, "gen-sndbuf", 0, "generator socket send buffer in bytes (0: system default; see README)")
	flag.IntVar(&o.latN, "latency-n", 2000, "ping-pong round trips per consumer and round")
	flag.DurationVar(&o.latGap, "latency-gap", time.Millisecond, "pause between ping-pong round trips (0: back to back, the CPUs never go idle)")
	flag.BoolVar(&o.noLatency, "no-latency", false, "skip the ping-pong latency test")
	flag.BoolVar(&o.noInstall, "no-install", false, "do not install missing packages with apt-get")
	flag.BoolVar(&o.noBuild, "no-build", false, "use the binaries already in bin/")
	flag.StringVar(&o.out, "out", "", "also write the Markdown report to this file")
	flag.StringVar(&o.jsonOut, "json", "", "write every measurement as JSON to this file")
	flag.DurationVar(&o.timeout, "timeout", 0, "bound on the whole run (0: computed from rounds, seconds and consumers)")
	flag.BoolVar(&o.listOnly, "list", false, "list the consumers and exit")
	flag.DurationVar(&o.quietWait, "quiet-wait", 20*time.Second, "before each measurement, wait up to this long for the two CPUs to be idle")
	flag.Float64Var(&o.quietMax, "quiet-max", 0.10, "busy fraction under which a CPU counts as idle for -quiet-wait")
	flag.Float64Var(&o.noiseMax, "noise-max", 0.10, "fraction of a benchmark CPU other programs may take during a measurement before it is repeated and flagged")
	flag.BoolVar(&o.noSyscalls, "no-syscalls", false, "do not count system calls per packet (an extra 1 s flood per consumer and round, under perf stat)")
	flag.IntVar(&o.retries, "retries", 2, "times a measurement disturbed by other programs is repeated")
	flag.Parse()
	o.drainWait = 3 * time.Second
	o.readyWait = 10 * time.Second
	o.stopWait = 3 * time.Second
	o.settle = 300 * time.Millisecond

	if o.listOnly {
		for _, c := range allConsumers {
			busy := ""
			if c.busy {
				busy = " (latency test only)"
			}
			fmt.Printf("%-20s %s%s\n", c.key, c.label, busy)
		}
		return 0
	}
	selected, err := selectConsumers(o.consumers)
	if err != nil {
		logf("%v", err)
		return 2
	}
	if o.rounds < 1 || o.seconds <= 0 || o.size < 8 || o.size > 65507 {
		logf("bad -rounds, -seconds or -size (8..65507)")
		return 2
	}
	if os.Geteuid() != 0 {
		logf("must run as root (network namespaces, iptables, NFQUEUE)")
		return 1
	}
	if o.dir, err = filepath.Abs(o.dir); err != nil {
		logf("%v", err)
		return 1
	}
	if b, err := os.ReadFile(filepath.Join(o.dir, "go.mod")); err != nil ||
		!strings.Contains(string(b), "module github.com/nfqueue-go/nfqueue/bench") {
		logf("-dir %s is not the bench module directory", o.dir)
		return 2
	}
	if o.timeout == 0 {
		// A generous bound: every measurement waits the longest for idle
		// CPUs and is repeated as often as allowed.
		per := time.Duration(o.seconds*float64(time.Second)) + 2*o.quietWait + 15*time.Second +
			time.Duration(o.latN)*(o.latGap+200*time.Microsecond)
		o.timeout = 15*time.Minute + time.Duration(o.rounds*(len(selected)+1)*(1+o.retries))*per
	}

	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	// A closed stdout or stderr (say, piped into head) must not kill the
	// run before it cleans up: writes then fail with EPIPE instead.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stopSignals := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stopSignals()

	b := &bench{o: o, consumers: selected}
	err = b.run(ctx)
	// Cleanup runs on every path out of run: success, error, signal,
	// timeout. Children also get SIGKILL from the kernel if this process
	// dies (Pdeathsig), and a namespace left by a killed run is removed by
	// the next one.
	killChildren()
	if b.ns != nil {
		if derr := b.ns.delete(); derr != nil {
			logf("deleting namespace: %v", derr)
		} else {
			logf("namespace %s deleted", b.ns.name)
		}
	}
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			logf("stopped: %v", context.Cause(ctx))
		} else {
			logf("%v", err)
		}
		// Print what was measured so far.
		if len(b.records) > 0 {
			b.report(os.Stdout)
		}
		return 1
	}
	return 0
}

func selectConsumers(list string) ([]*consumer, error) {
	if list == "all" {
		return allConsumers, nil
	}
	var out []*consumer
	for _, k := range strings.Split(list, ",") {
		k = strings.TrimSpace(k)
		found := false
		for _, c := range allConsumers {
			if c.key == k {
				out = append(out, c)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown consumer %q (see -list)", k)
		}
	}
	return out, nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "nfqbench: "+format+"\n", args...)
}

type bench struct {
	o         options
	perf      string // path of perf(1), empty when syscalls are not counted
	consumers []*consumer
	ns        *netns
	bin       string
	records   []record
	started   time.Time
}

// Ports, relative to -port.
func (b *bench) floodPort() int    { return b.o.port }     // NFQUEUE in OUTPUT, DROP in INPUT
func (b *bench) basePort() int     { return b.o.port + 1 } // DROP in INPUT only
func (b *bench) pingPort() int     { return b.o.port + 2 } // NFQUEUE in OUTPUT, echoed
func (b *bench) pingBasePort() int { return b.o.port + 3 } // no rule, echoed

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

func (b *bench) run(ctx context.Context) error {
	b.started = time.Now()
	b.bin = filepath.Join(b.o.dir, "bin")
	if !b.o.noInstall {
		if err := ensurePackages(ctx); err != nil {
			return err
		}
	}
	if !b.o.noBuild {
		if err := b.build(ctx); err != nil {
			return err
		}
	}
	for _, c := range b.consumers {
		if c.buildErr == nil {
			if _, err := os.Stat(filepath.Join(b.bin, c.bin)); err != nil {
				c.buildErr = err
			}
		}
		if c.buildErr != nil {
			logf("consumer %s is not available: %v", c.key, firstLine(c.buildErr.Error()))
		}
	}

	if !b.o.noSyscalls {
		if p, err := lookPath("perf"); err == nil {
			if _, err := run(ctx, 20*time.Second, p, "stat", "-x,", "-e", "raw_syscalls:sys_enter", "true"); err == nil {
				b.perf = p
			}
		}
		if b.perf == "" {
			logf("perf with the raw_syscalls tracepoints is not available: syscalls per packet are not counted")
		}
	}

	removeStaleNetns(ctx, "nfqbench")
	name := fmt.Sprintf("nfqbench-%d", os.Getpid())
	ns, err := createNetns(ctx, name)
	if ns != nil {
		b.ns = ns
	}
	if err != nil {
		return err
	}
	logf("namespace %s created", name)
	q := strconv.Itoa(b.o.queue)
	rules := [][]string{
		{"-A", "OUTPUT", "-p", "udp", "--dport", strconv.Itoa(b.floodPort()), "-j", "NFQUEUE", "--queue-num", q},
		{"-A", "INPUT", "-p", "udp", "--dport", strconv.Itoa(b.floodPort()), "-j", "DROP"},
		{"-A", "INPUT", "-p", "udp", "--dport", strconv.Itoa(b.basePort()), "-j", "DROP"},
		{"-A", "OUTPUT", "-p", "udp", "--dport", strconv.Itoa(b.pingPort()), "-j", "NFQUEUE", "--queue-num", q},
		// Counts the packets of the flood that left the queue with
		// ACCEPT: accepted packets go on to the next hook.
		{"-t", "mangle", "-A", "POSTROUTING", "-p", "udp", "--dport", strconv.Itoa(b.floodPort())},
	}
	for _, r := range rules {
		if _, err := ns.iptables(ctx, r...); err != nil {
			return err
		}
	}

	for round := 1; round <= b.o.rounds; round++ {
		logf("round %d/%d", round, b.o.rounds)
		if err := b.baseline(ctx, round); err != nil {
			return err
		}
		for _, c := range b.consumers {
			if c.buildErr != nil {
				continue
			}
			if c.busy && b.o.noLatency {
				continue
			}
			var rec record
			for attempt := 0; ; attempt++ {
				rec = b.runConsumer(ctx, round, c)
				if ctx.Err() != nil {
					return ctx.Err()
				}
				rec.Attempts = attempt + 1
				if !b.noisy(rec) || attempt >= b.o.retries {
					break
				}
				logf("  %s (other programs ran: measuring again)", rec.summary())
			}
			b.records = append(b.records, rec)
			logf("  %s", rec.summary())
		}
	}
	b.report(os.Stdout)
	if b.o.out != "" {
		f, err := os.Create(b.o.out)
		if err != nil {
			return err
		}
		b.report(f)
		if err := f.Close(); err != nil {
			return err
		}
	}
	if b.o.jsonOut != "" {
		data, _ := json.MarshalIndent(b.records, "", "  ")
		if err := os.WriteFile(b.o.jsonOut, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// ensurePackages installs what the build and the run need, if missing.
func ensurePackages(ctx context.Context) error {
	missing := false
	for _, t := range []string{"gcc", "pkg-config", "iptables", "ip", "taskset"} {
		if _, err := lookPath(t); err != nil {
			missing = true
		}
	}
	if !missing {
		if _, err := run(ctx, 10*time.Second, "pkg-config", "--exists", "libnetfilter_queue", "libmnl"); err != nil {
			missing = true
		}
	}
	if _, err := os.Stat("/usr/include/linux/netfilter/nfnetlink_queue.h"); err != nil {
		missing = true
	}
	if _, err := lookPath("perf"); err != nil {
		// Optional: without it, syscalls per packet are not counted.
		logf("installing linux-perf with apt-get (optional)")
		if _, err := run(ctx, 10*time.Minute, "apt-get", "install", "-y", "--no-install-recommends", "linux-perf"); err != nil {
			logf("linux-perf not installed: %v", firstLine(err.Error()))
		}
	}
	if !missing {
		return nil
	}
	logf("installing packages with apt-get")
	os.Setenv("DEBIAN_FRONTEND", "noninteractive")
	pkgs := []string{"install", "-y", "--no-install-recommends", "gcc", "libc6-dev", "linux-libc-dev",
		"pkg-config", "libnetfilter-queue-dev", "libmnl-dev", "iptables", "iproute2", "util-linux"}
	if _, err := run(ctx, 10*time.Minute, "apt-get", pkgs...); err != nil {
		if _, err := run(ctx, 5*time.Minute, "apt-get", "update"); err != nil {
			return err
		}
		if _, err := run(ctx, 10*time.Minute, "apt-get", pkgs...); err != nil {
			return err
		}
	}
	return nil
}

// build compiles the generator and every selected consumer into bin/. A
// consumer that fails to build is left out of the run; the generator must
// build.
func (b *bench) build(ctx context.Context) error {
	if err := os.MkdirAll(b.bin, 0o755); err != nil {
		return err
	}
	logf("building into %s", b.bin)
	goBuild := func(out, pkg string) error {
		_, err := runIn(ctx, b.o.dir, 5*time.Minute, "go", "build", "-o", filepath.Join(b.bin, out), pkg)
		return err
	}
	if err := goBuild("nfqgen", "./cmd/nfqgen"); err != nil {
		return err
	}
	cflags := func(lib string) []string {
		out, err := run(ctx, 10*time.Second, "pkg-config", "--cflags", "--libs", lib)
		if err != nil {
			return nil
		}
		return strings.Fields(out)
	}
	built := map[string]error{}
	for _, c := range b.consumers {
		if err, ok := built[c.bin]; ok {
			c.buildErr = err
			continue
		}
		var err error
		switch c.bin {
		case "nfq_classic", "mnl_batch", "mnl_busypoll":
			lib := "libmnl"
			if c.bin == "nfq_classic" {
				lib = "libnetfilter_queue"
			}
			args := append([]string{"-O2", "-Wall", "-Wextra", "-o", filepath.Join(b.bin, c.bin),
				filepath.Join(b.o.dir, "c", c.bin+".c")}, cflags(lib)...)
			_, err = runIn(ctx, b.o.dir, 2*time.Minute, "gcc", args...)
		default:
			err = goBuild(c.bin, "./consumers/"+c.bin)
		}
		built[c.bin] = err
		c.buildErr = err
	}
	return ctx.Err()
}

// baseline measures the generator without any queue: the flood goes to a
// port with only a DROP rule in INPUT, and the ping-pong to a port without
// rules.
func (b *bench) baseline(ctx context.Context, round int) error {
	for attempt := 0; ; attempt++ {
		rec, err := b.baselineOnce(ctx, round)
		if err != nil {
			return err
		}
		rec.Attempts = attempt + 1
		if !b.noisy(rec) || attempt >= b.o.retries {
			b.records = append(b.records, rec)
			logf("  %s", rec.summary())
			return nil
		}
		logf("  %s (other programs ran: measuring again)", rec.summary())
	}
}

// noisy reports whether other programs took more than -noise-max of a
// benchmark CPU during one of rec's measurements.
func (b *bench) noisy(rec record) bool {
	if rec.Err != "" {
		return false
	}
	return (rec.Tput != nil && rec.Tput.OtherLoad > b.o.noiseMax) ||
		(rec.Lat != nil && rec.Lat.OtherLoad > b.o.noiseMax)
}

func (b *bench) baselineOnce(ctx context.Context, round int) (record, error) {
	rec := record{Round: round, Consumer: "baseline"}
	rec.Quiet = b.waitQuiet(ctx)
	g0, g, s0, s1, err := b.flood(ctx, b.basePort(), func() (snapshot, error) { return b.snap(0) })
	if err != nil {
		return rec, fmt.Errorf("baseline flood: %w", err)
	}
	rec.Tput = &tputResult{Sent: g.pps()}
	windowTicks := s1.t.Sub(s0.t).Seconds() * userHZ
	otherGen := float64(s1.cpus[b.o.genCPU].User-s0.cpus[b.o.genCPU].User) - float64(g.UtimeUs-g0.UtimeUs)/1e6*userHZ
	otherCons := float64(s1.cpus[b.o.consCPU].User - s0.cpus[b.o.consCPU].User)
	rec.Tput.OtherLoad = max(otherGen, otherCons, 0) / windowTicks
	if !b.o.noLatency {
		rec.Quiet = b.waitQuiet(ctx) && rec.Quiet
		l, err := b.pingpong(ctx, b.pingBasePort(), 0)
		if err != nil {
			return rec, fmt.Errorf("baseline ping-pong: %w", err)
		}
		rec.Lat = l
	}
	return rec, nil
}

// snapshot is what the kernel says at one instant.
type snapshot struct {
	t         time.Time
	q         queueLine
	qok       bool
	user, sys uint64           // consumer CPU, ticks
	cpus      map[int]cpuTimes // per-CPU times, ticks
	kworker   map[int]uint64   // kernel workers' CPU time, ticks
}

func (b *bench) snap(pid int) (s snapshot, err error) {
	s.t = time.Now()
	s.q, s.qok, err = b.ns.queueStats(uint32(b.o.queue))
	if err != nil {
		return s, err
	}
	if pid > 0 {
		if s.user, s.sys, err = procCPU(pid); err != nil {
			return s, err
		}
	}
	s.kworker = kworkerTicks()
	s.cpus, err = readCPUTimes()
	return s, err
}

// waitQuiet waits, up to b.o.quietWait, until the generator's and the
// consumer's CPUs are nearly idle, so that other work on the machine does
// not run into a measurement. It reports whether they were.
func (b *bench) waitQuiet(ctx context.Context) bool {
	deadline := time.Now().Add(b.o.quietWait)
	for {
		c0, err := readCPUTimes()
		if err != nil {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(200 * time.Millisecond):
		}
		c1, err := readCPUTimes()
		if err != nil {
			return false
		}
		quiet := true
		for _, cpu := range []int{b.o.genCPU, b.o.consCPU} {
			busy := c1[cpu].Busy() - c0[cpu].Busy()
			total := busy + c1[cpu].Idle - c0[cpu].Idle
			if total > 0 && float64(busy)/float64(total) > b.o.quietMax {
				quiet = false
			}
		}
		if quiet {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// genResult is the generator's closing line.
type genResult struct {
	Sent      uint64            `json:"sent"`
	UtimeUs   int64             `json:"utime_us"`
	StimeUs   int64             `json:"stime_us"`
	ElapsedNs int64             `json:"elapsed_ns"`
	Errors    map[string]uint64 `json:"errors"`
}

func (g genResult) pps() float64 {
	if g.ElapsedNs <= 0 {
		return 0
	}
	return float64(g.Sent) / (float64(g.ElapsedNs) / 1e9)
}

// flood runs the generator against port. With pid > 0 (a consumer's) it
// takes a snapshot when the generator starts sending and one when it stops.
func (b *bench) flood(ctx context.Context, port int, takeSnap func() (snapshot, error)) (g0, g genResult, start, end snapshot, err error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return g0, g, start, end, err
	}
	dur := time.Duration(b.o.seconds * float64(time.Second))
	argv := b.ns.wrap(b.o.genCPU, filepath.Join(b.bin, "nfqgen"), "flood",
		"-addr", addr(port), "-size", strconv.Itoa(b.o.size), "-duration", dur.String(),
		"-sndbuf", strconv.Itoa(b.o.genSndbuf))
	gen, err := startChild("nfqgen", argv, nil, pw)
	pw.Close()
	if err != nil {
		pr.Close()
		return g0, g, start, end, err
	}
	defer gen.stop(time.Second)
	lines := scanLines(pr)
	limit := time.NewTimer(dur + 20*time.Second)
	defer limit.Stop()
	for done := false; !done; {
		select {
		case line, ok := <-lines:
			if !ok {
				<-gen.done
				return g0, g, start, end, fmt.Errorf("generator ended without a result: %v %s", gen.err, gen.stderr)
			}
			var ev struct {
				Event string `json:"event"`
			}
			if json.Unmarshal([]byte(line), &ev) != nil {
				continue
			}
			switch ev.Event {
			case "start":
				json.Unmarshal([]byte(line), &g0)
				if takeSnap != nil {
					if start, err = takeSnap(); err != nil {
						return g0, g, start, end, err
					}
				}
			case "done":
				if takeSnap != nil {
					if end, err = takeSnap(); err != nil {
						return g0, g, start, end, err
					}
				}
				if err := json.Unmarshal([]byte(line), &g); err != nil {
					return g0, g, start, end, err
				}
				done = true
			}
		case <-limit.C:
			return g0, g, start, end, errors.New("generator did not finish in time")
		case <-ctx.Done():
			return g0, g, start, end, ctx.Err()
		}
	}
	select {
	case <-gen.done:
	case <-time.After(5 * time.Second):
	}
	return g0, g, start, end, nil
}

// pingpong runs the round-trip test against port.
// With consumer > 0, that process's CPU time is not counted as other load.
func (b *bench) pingpong(ctx context.Context, port, consumer int) (*latResult, error) {
	argv := b.ns.wrap(b.o.genCPU, filepath.Join(b.bin, "nfqgen"), "pingpong",
		"-addr", addr(port), "-n", strconv.Itoa(b.o.latN), "-size", strconv.Itoa(b.o.size),
		"-gap", b.o.latGap.String())
	limit := 30*time.Second + time.Duration(b.o.latN)*(2*time.Millisecond+2*b.o.latGap)
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	s0, err := b.snap(consumer)
	if err != nil {
		return nil, err
	}
	var out strings.Builder
	ch, err := startChild("nfqgen pingpong", argv, nil, &out)
	if err != nil {
		return nil, err
	}
	select {
	case <-ch.done:
	case <-ctx.Done():
		ch.stop(time.Second)
		return nil, ctx.Err()
	}
	if ch.err != nil {
		q, ok, _ := b.ns.queueStats(uint32(b.o.queue))
		state := "queue not bound"
		if ok {
			state = fmt.Sprintf("queue: %d waiting, last id %d, port id %d", q.Total, q.IDSeq, q.PortID)
		}
		return nil, fmt.Errorf("%v: %s (%s)", ch.err, ch.stderr, state)
	}
	var l latResult
	if err := json.Unmarshal([]byte(strings.TrimSpace(out.String())), &l); err != nil {
		return nil, fmt.Errorf("ping-pong output %q: %w", out.String(), err)
	}
	s1, err := b.snap(consumer)
	if err != nil {
		return nil, err
	}
	windowTicks := s1.t.Sub(s0.t).Seconds() * userHZ
	otherGen := float64(s1.cpus[b.o.genCPU].User-s0.cpus[b.o.genCPU].User) - float64(l.UtimeUs)/1e6*userHZ
	otherCons := float64(s1.cpus[b.o.consCPU].User-s0.cpus[b.o.consCPU].User) - float64(s1.user-s0.user)
	l.OtherLoad = max(otherGen, otherCons, 0) / windowTicks
	return &l, nil
}

// mangleCount returns the packet counter of the counting rule in mangle
// POSTROUTING.
func (b *bench) mangleCount(ctx context.Context) (uint64, error) {
	out, err := b.ns.iptables(ctx, "-t", "mangle", "-nvxL", "POSTROUTING")
	if err != nil {
		return 0, err
	}
	want := "dpt:" + strconv.Itoa(b.floodPort())
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, want) {
			f := strings.Fields(line)
			return strconv.ParseUint(f[0], 10, 64)
		}
	}
	return 0, errors.New("counting rule not found")
}

// waitQueue polls the queue's /proc line until cond holds.
func (b *bench) waitQueue(ctx context.Context, limit time.Duration, c *child, cond func(q queueLine, ok bool) bool) (queueLine, bool, error) {
	deadline := time.Now().Add(limit)
	for {
		q, ok, err := b.ns.queueStats(uint32(b.o.queue))
		if err != nil {
			return q, ok, err
		}
		if cond(q, ok) {
			return q, ok, nil
		}
		if c != nil && c.exited() {
			return q, ok, fmt.Errorf("consumer exited: %v: %s", c.err, c.stderr)
		}
		if time.Now().After(deadline) {
			return q, ok, errors.New("timed out waiting for the queue")
		}
		select {
		case <-ctx.Done():
			return q, ok, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// runConsumer starts one consumer, floods its queue, drains it, runs the
// ping-pong and stops it. Failures end up in the record, not in the run.
func (b *bench) runConsumer(ctx context.Context, round int, c *consumer) (rec record) {
	rec = record{Round: round, Consumer: c.key}
	fail := func(err error) record {
		rec.Err = err.Error()
		return rec
	}
	// The previous consumer's queue must be gone.
	if _, _, err := b.waitQueue(ctx, 5*time.Second, nil, func(_ queueLine, ok bool) bool { return !ok }); err != nil {
		return fail(fmt.Errorf("queue still bound before start: %w", err))
	}
	argv := b.ns.wrap(b.o.consCPU, append(append([]string{filepath.Join(b.bin, c.bin)}, c.args...), strconv.Itoa(b.o.queue))...)
	ch, err := startChild(c.key, argv, c.env, nil)
	if err != nil {
		return fail(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			ch.stop(b.o.stopWait)
		}
	}()
	fail = func(err error) record {
		// Stop the consumer first so that what it prints on exit is
		// part of the record.
		stopped = true
		ch.stop(b.o.stopWait)
		rec.Err = err.Error()
		if out := ch.stderr.String(); out != "" {
			rec.Err += " [consumer: " + strings.ReplaceAll(out, "\n", " / ") + "]"
		}
		return rec
	}
	if _, _, err := b.waitQueue(ctx, b.o.readyWait, ch, func(q queueLine, ok bool) bool {
		return ok && q.CopyMode == 2 && q.PortID != 0
	}); err != nil {
		return fail(fmt.Errorf("waiting for the consumer to bind: %w", err))
	}
	time.Sleep(b.o.settle)

	rec.Quiet = true
	if !c.busy {
		rec.Quiet = b.waitQuiet(ctx)
		t, err := b.throughput(ctx, ch)
		if err != nil {
			return fail(err)
		}
		rec.Tput = t
		if b.perf != "" {
			n, err := b.syscallsPerPacket(ctx, ch)
			if err != nil {
				return fail(fmt.Errorf("counting syscalls: %w", err))
			}
			t.SyscallsPerPkt = n
		}
	}
	if !b.o.noLatency {
		time.Sleep(b.o.settle)
		if !c.busy { // a busy-polling consumer keeps its CPU busy
			rec.Quiet = b.waitQuiet(ctx) && rec.Quiet
		}
		l, err := b.pingpong(ctx, b.pingPort(), ch.pid())
		if err != nil {
			return fail(fmt.Errorf("ping-pong: %w", err))
		}
		rec.Lat = l
	}
	stopped = true
	rec.CleanExit = ch.stop(b.o.stopWait)
	if !rec.CleanExit {
		rec.ExitNote = fmt.Sprintf("%v %s", ch.err, firstLine(ch.stderr.String()))
	}
	return rec
}

func (b *bench) throughput(ctx context.Context, ch *child) (*tputResult, error) {
	pid := ch.pid()
	first, err := b.snap(pid)
	if err != nil {
		return nil, err
	}
	acc0, err := b.mangleCount(ctx)
	if err != nil {
		return nil, err
	}
	g0, g, s0, s1, err := b.flood(ctx, b.floodPort(), func() (snapshot, error) { return b.snap(pid) })
	if err != nil {
		return nil, err
	}
	// Let the consumer give its verdicts for what is still queued.
	last, _, err := b.waitQueue(ctx, b.o.drainWait, ch, func(q queueLine, ok bool) bool { return ok && q.Total == 0 })
	if err != nil && ctx.Err() != nil {
		return nil, err
	}
	acc1, err := b.mangleCount(ctx)
	if err != nil {
		return nil, err
	}
	if !s0.qok || !s1.qok {
		return nil, errors.New("queue vanished during the flood")
	}

	t := &tputResult{Sent: g.pps(), GenErrors: g.Errors}
	// A packet has been verdicted when it got an id, is no longer
	// waiting, and was not lost on the way to the socket.
	verdicted := func(s snapshot) uint32 { return s.q.IDSeq - s.q.Total - s.q.UserDropped }
	t.Verdicted = uint64(verdicted(s1) - verdicted(s0))
	window := s1.t.Sub(s0.t).Seconds()
	t.WindowS = window
	t.Rate = float64(t.Verdicted) / window
	if t.Verdicted > 0 {
		tick := 1e9 / float64(userHZ)
		t.UserNs = float64(s1.user-s0.user) * tick / float64(t.Verdicted)
		t.SysNs = float64(s1.sys-s0.sys) * tick / float64(t.Verdicted)
		cons := s1.cpus[b.o.consCPU]
		cons0 := s0.cpus[b.o.consCPU]
		t.CPUBusyNs = float64(cons.Busy()-cons0.Busy()) * tick / float64(t.Verdicted)
		t.CPUSoftIRQNs = float64(cons.SoftIRQ-cons0.SoftIRQ) * tick / float64(t.Verdicted)
		t.KworkerNs = float64(kworkerDelta(s0.kworker, s1.kworker)) * tick / float64(t.Verdicted)
		t.GenNs = float64((g.UtimeUs+g.StimeUs)-(g0.UtimeUs+g0.StimeUs)) * 1e3 / float64(t.Verdicted)
	}
	// User time on the two CPUs that belongs to neither the generator nor
	// the consumer: other programs running into the measurement.
	windowTicks := window * userHZ
	gen := s1.cpus[b.o.genCPU]
	gen0 := s0.cpus[b.o.genCPU]
	cons := s1.cpus[b.o.consCPU]
	cons0 := s0.cpus[b.o.consCPU]
	otherGen := float64(gen.User-gen0.User) - float64(g.UtimeUs-g0.UtimeUs)/1e6*userHZ
	otherCons := float64(cons.User-cons0.User) - float64(s1.user-s0.user)
	t.OtherLoadGen = max(otherGen, 0) / windowTicks
	t.OtherLoadCons = max(otherCons, 0) / windowTicks
	t.OtherLoad = max(t.OtherLoadGen, t.OtherLoadCons)
	t.Drops = uint64(last.Dropped-first.q.Dropped) + uint64(last.UserDropped-first.q.UserDropped)
	t.Left = last.Total
	ids := uint64(last.IDSeq - first.q.IDSeq)
	t.Unaccounted = int64(ids) - int64(last.UserDropped-first.q.UserDropped) - int64(acc1-acc0) - int64(last.Total)
	return t, nil
}

// syscallsPerPacket floods the consumer for one second more while perf
// counts the system calls of its threads (the raw_syscalls:sys_enter
// tracepoint), and returns the count divided by the packets verdicted. It is
// a separate flood because the tracepoint slows every system call down.
func (b *bench) syscallsPerPacket(ctx context.Context, ch *child) (float64, error) {
	s0, err := b.snap(0)
	if err != nil {
		return 0, err
	}
	perf, err := startChild("perf", []string{b.perf, "stat", "-x,", "-e", "raw_syscalls:sys_enter",
		"-p", strconv.Itoa(ch.pid())}, nil, nil)
	if err != nil {
		return 0, err
	}
	defer perf.stop(time.Second)
	time.Sleep(300 * time.Millisecond) // let perf attach
	if perf.exited() {
		return 0, fmt.Errorf("perf: %v: %s", perf.err, perf.stderr)
	}
	saved := b.o.seconds
	b.o.seconds = 1
	_, _, _, _, err = b.flood(ctx, b.floodPort(), nil)
	b.o.seconds = saved
	if err != nil {
		return 0, err
	}
	if _, _, err := b.waitQueue(ctx, b.o.drainWait, ch, func(q queueLine, ok bool) bool { return ok && q.Total == 0 }); err != nil {
		return 0, err
	}
	perf.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-perf.done:
	case <-time.After(5 * time.Second):
		return 0, errors.New("perf did not stop")
	}
	s1, err := b.snap(0)
	if err != nil {
		return 0, err
	}
	var count float64 = -1
	for _, line := range strings.Split(perf.stderr.String(), "\n") {
		f := strings.Split(line, ",")
		if len(f) >= 3 && strings.Contains(line, "raw_syscalls:sys_enter") {
			count, err = strconv.ParseFloat(f[0], 64)
			if err != nil {
				return 0, fmt.Errorf("perf output %q", line)
			}
		}
	}
	if count < 0 {
		return 0, fmt.Errorf("no count in perf output %q", perf.stderr)
	}
	verdicted := func(s snapshot) uint32 { return s.q.IDSeq - s.q.Total - s.q.UserDropped }
	n := float64(verdicted(s1) - verdicted(s0))
	if n == 0 {
		return 0, errors.New("no packet verdicted")
	}
	return count / n, nil
}
