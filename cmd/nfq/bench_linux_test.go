package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestBenchHelp(t *testing.T) {
	code, _, stderr := runCLI(t, "bench", "--help")
	if code != 0 || !strings.Contains(stderr, "Usage: nfq bench") {
		t.Fatalf("nfq bench --help: status %d\n%s", code, stderr)
	}
	for _, f := range []string{"-mode", "-duration", "-size", "-rounds", "-latency", "-latency-n", "-latency-gap", "-json"} {
		if !strings.Contains(stderr, "  "+f+" ") && !strings.Contains(stderr, "  "+f+"\n") {
			t.Errorf("--help does not describe %s", f)
		}
	}
	for _, m := range benchModes {
		if !strings.Contains(stderr, "  "+m.name+" ") {
			t.Errorf("--help does not describe mode %s", m.name)
		}
	}
	_, _, stderr = runCLI(t, "--help")
	if !strings.Contains(stderr, "  bench ") {
		t.Errorf("nfq --help does not list bench:\n%s", stderr)
	}
}

func TestBenchUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--mode", "serve,turbo"}, `unknown mode "turbo"`},
		{[]string{"--mode", "pull,pull"}, `mode "pull" given twice`},
		{[]string{"--mode", ""}, `unknown mode ""`},
		{[]string{"--duration", "10ms"}, "--duration must be between"},
		{[]string{"--size", "4"}, "--size must be between 8 and 65507"},
		{[]string{"--rounds", "0"}, "--rounds must be between"},
		{[]string{"--latency-n", "0"}, "--latency-n must be between"},
		{[]string{"--latency-gap", "-1ms"}, "--latency-gap must be between"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		args := append([]string{"bench"}, c.args...)
		code, stdout, stderr := runCLI(t, args...)
		if code != 2 || stdout != "" {
			t.Errorf("nfq %s: status %d, stdout %q, want 2 and nothing", strings.Join(args, " "), code, stdout)
		}
		if !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("nfq %s: stderr %q: want one line with %q", strings.Join(args, " "), stderr, c.want)
		}
	}
	// Without latency, its count does not matter.
	if _, err := parseBenchModes(" serve , busypoll"); err != nil {
		t.Errorf("spaces around modes: %v", err)
	}
}

func TestParseProcStatCPU(t *testing.T) {
	// The command name may hold spaces and parentheses.
	stat := "4242 (nfq (x) y) S 1 4242 4242 0 -1 4194560 1234 0 0 0 157 2931 0 0 20 0 3 0 123456 1000 200 18446744073709551615\n"
	u, s, err := parseProcStatCPU([]byte(stat))
	if err != nil || u != 157 || s != 2931 {
		t.Errorf("got %d %d %v, want 157 2931", u, s, err)
	}
	if _, _, err := parseProcStatCPU([]byte("4242 (nfq) S 1 2")); err == nil {
		t.Error("a short line parses")
	}
	if _, _, err := procCPUTicks(os.Getpid()); err != nil {
		t.Error(err)
	}
}

// requireRoot skips a kernel test without root, unless NFQUEUE_INTEGRATION=1:
// then it fails. nfq bench needs no other program.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("NFQUEUE_INTEGRATION") == "1" {
		t.Fatal("NFQUEUE_INTEGRATION=1 but kernel tests need root")
	}
	t.Skip("kernel tests need root")
}

// benchNamespaces returns the network namespaces nfq bench (pid) holds,
// without this test's own.
func benchNamespaces(t *testing.T, pid int) map[string]bool {
	t.Helper()
	own, _ := os.Readlink("/proc/self/ns/net")
	var nss map[string]bool
	for range 200 {
		nss = netnsOf(pid)
		delete(nss, own)
		if len(nss) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(nss) != 1 {
		t.Errorf("nfq bench holds %d namespaces (%v), want 1", len(nss), nss)
	}
	return nss
}

// TestBenchJSON runs every mode for real, shortly, and checks the JSON
// lines and that the namespace is gone afterwards.
func TestBenchJSON(t *testing.T) {
	requireRoot(t)
	modes := []string{"serve", "serve-nobatch", "pull", "busypoll"}
	p := startNfq(t, "namespace ready", "bench", "--duration", "1s", "--latency-n", "100", "--json", "--mode", strings.Join(modes, ","))
	nss := benchNamespaces(t, p.cmd.Process.Pid)
	code := p.wait(t, 60*time.Second)
	stdout, stderr := p.stdout.String(), p.stderr.String()
	if code != 0 {
		t.Fatalf("status %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var sum benchSummary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil || sum.Type != "summary" {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	if !sum.OK || !sum.CleanedUp || sum.Interrupted || len(sum.Failures) > 0 {
		t.Errorf("summary: ok %v, cleaned up %v, interrupted %v, failures %q", sum.OK, sum.CleanedUp, sum.Interrupted, sum.Failures)
	}
	if sum.Setup.Duration != "1s" || sum.Setup.LatencyN != 100 || sum.Setup.Backend == "" || sum.Machine.CPUs < 1 || sum.Machine.Kernel == "" {
		t.Errorf("setup %+v, machine %+v", sum.Setup, sum.Machine)
	}
	if nq := sum.NoQueue; nq == nil || nq.SentPPS <= 0 || nq.RTTP50Ns == nil || *nq.RTTP50Ns <= 0 {
		t.Errorf("no-queue row %+v", nq)
	}
	if len(sum.Modes) != len(modes) {
		t.Fatalf("%d modes in the summary, want %d", len(sum.Modes), len(modes))
	}
	for i, r := range sum.Modes {
		if r.Mode != modes[i] || r.Rounds != 1 || r.VerdictedPPS <= 0 || r.Left != 0 || r.UserNs+r.SysNs <= 0 || r.RTTP50Ns == nil || r.AddedP99Ns == nil {
			t.Errorf("row %d: %+v", i, r)
		}
		if batched := r.Mode == "serve" || r.Mode == "busypoll"; batched != (r.PktsPerBatch > 0) {
			t.Errorf("%s: %v packets per batch verdict", r.Mode, r.PktsPerBatch)
		}
	}
	seen := map[string]bool{}
	for _, l := range lines[:len(lines)-1] {
		var rec benchRecord
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec.Type != "measurement" {
			t.Fatalf("line %q: %v", l, err)
		}
		seen[rec.Mode] = true
		if rec.Error != "" || rec.Throughput == nil || rec.Latency == nil || rec.Latency.N != 100 {
			t.Errorf("measurement %s", l)
			continue
		}
		if rec.Mode == benchNoQueue {
			continue
		}
		tp := rec.Throughput
		if tp.Left != 0 || tp.VerdictedPPS <= 0 || tp.Verdicted == 0 || rec.Library == nil || rec.Library.Received < tp.Verdicted || rec.Library.Accepted != rec.Library.Received {
			t.Errorf("%s: throughput %+v, library %+v", rec.Mode, tp, rec.Library)
		}
	}
	for _, m := range append(modes, benchNoQueue) {
		if !seen[m] {
			t.Errorf("no measurement of %s", m)
		}
	}
	if !strings.Contains(stderr, "round 1/1  serve") {
		t.Errorf("no progress lines:\n%s", stderr)
	}
	if alive := netnsAlive(t, nss); len(alive) > 0 {
		t.Errorf("the benchmark's namespace still exists: %v", alive)
	}
}

// TestBenchInterrupt stops nfq bench with SIGINT during a flood: it must
// print what it measured, remove everything and exit with status 1.
func TestBenchInterrupt(t *testing.T) {
	requireRoot(t)
	p := startNfq(t, fmt.Sprintf("round 1/1  %-13s flooding", "serve"), "bench", "--duration", "1s", "--latency=false")
	nss := benchNamespaces(t, p.cmd.Process.Pid)
	time.Sleep(300 * time.Millisecond)
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code := p.wait(t, 15*time.Second)
	if code != 1 {
		t.Errorf("status %d after Ctrl-C, want 1", code)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to stop", d)
	}
	out := p.stdout.String()
	rows := map[string][]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 1 && rows[f[0]] == nil {
			rows[f[0]] = f
		}
	}
	// The no-queue flood was measured, serve was not.
	if nq, serve := rows[benchNoQueue], rows["serve"]; len(nq) < 4 || nq[3] == "-" || len(serve) < 2 || serve[1] != "not" ||
		!strings.Contains(out, "interrupted: the tables show what was measured before Ctrl-C; the namespace and its rules are removed") {
		t.Errorf("output after Ctrl-C:\n%s", out)
	}
	if !strings.HasSuffix(p.stderr.String(), "nfq bench: interrupted; the namespace and its rules are removed\n") {
		t.Errorf("stderr after Ctrl-C:\n%s", p.stderr.String())
	}
	if alive := netnsAlive(t, nss); len(alive) > 0 {
		t.Errorf("the benchmark's namespace still exists: %v", alive)
	}
}
