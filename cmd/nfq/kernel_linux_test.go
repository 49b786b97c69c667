package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/nfqueue-go/nfqueue"
	"github.com/nfqueue-go/nfqueue/rules"
)

// Kernel tests run nfq for real in network namespaces they create. They
// skip without root, unless NFQUEUE_INTEGRATION=1: then they fail.

func requireKernel(t *testing.T) {
	t.Helper()
	reason := ""
	switch {
	case os.Geteuid() != 0:
		reason = "kernel tests need root"
	default:
		if _, err := exec.LookPath("ip"); err != nil {
			reason = "ip (iproute2) is not installed"
		}
	}
	if reason == "" {
		return
	}
	if os.Getenv("NFQUEUE_INTEGRATION") == "1" {
		t.Fatalf("NFQUEUE_INTEGRATION=1 but %s", reason)
	}
	t.Skip(reason)
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// nfqBinary builds nfq once per test run, into a directory every user can
// read (for the unprivileged test).
func nfqBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "nfq-test-bin-")
		if binErr != nil {
			return
		}
		if binErr = os.Chmod(binDir, 0o755); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "nfq")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// result is a finished nfq process.
type result struct {
	code           int
	stdout, stderr string
}

// runNfq runs the nfq binary to its end, within timeout.
func runNfq(t *testing.T, timeout time.Duration, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, nfqBinary(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("nfq %s: no exit within %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), timeout, out.String(), errb.String())
	}
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("nfq %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// bgNfq is an nfq process running in the background.
type bgNfq struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr *lineBuffer
	done   chan struct{}
	err    error
}

// lineBuffer collects output and signals each new line.
type lineBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines chan string
}

func (b *lineBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startNfq starts nfq and returns once it printed a stderr line containing
// ready; the process is killed when the test ends.
func startNfq(t *testing.T, ready string, args ...string) *bgNfq {
	t.Helper()
	p := &bgNfq{cmd: exec.Command(nfqBinary(t), args...), done: make(chan struct{}), stderr: &lineBuffer{lines: make(chan string, 100)}}
	p.cmd.Stdout = &p.stdout
	pr, pw := io.Pipe()
	p.cmd.Stderr = pw
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			p.stderr.mu.Lock()
			p.stderr.buf.WriteString(sc.Text() + "\n")
			p.stderr.mu.Unlock()
			select {
			case p.stderr.lines <- sc.Text():
			default:
			}
		}
	}()
	go func() {
		p.err = p.cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	deadline := time.After(20 * time.Second)
	for {
		select {
		case l := <-p.stderr.lines:
			if strings.Contains(l, ready) {
				return p
			}
		case <-p.done:
			t.Fatalf("nfq %s exited before it was ready: %v\nstderr:\n%s", strings.Join(args, " "), p.err, p.stderr.String())
		case <-deadline:
			t.Fatalf("nfq %s: not ready after 20s\nstderr:\n%s", strings.Join(args, " "), p.stderr.String())
		}
	}
}

// wait waits for the process to exit and returns its status.
func (p *bgNfq) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("nfq did not exit within %v\nstdout:\n%s\nstderr:\n%s", timeout, p.stdout.String(), p.stderr.String())
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatal(p.err)
	}
	return 0
}

// testNS is a named network namespace (/run/netns/NAME) made for one test.
type testNS struct {
	name, path string
	ns         *netNS
}

func newTestNS(t *testing.T) *testNS {
	t.Helper()
	requireKernel(t)
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	n := &testNS{name: "nfqcli-" + hex.EncodeToString(rnd[:])}
	n.path = "/run/netns/" + n.name
	if out, err := exec.Command("ip", "netns", "add", n.name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", n.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", n.name, err, out)
		}
	})
	var err error
	if n.ns, err = openNetNS(n.path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.ns.Close() })
	if err := n.ns.linkUp("lo"); err != nil {
		t.Fatal(err)
	}
	return n
}

// udp opens a UDP socket on loopback inside the namespace.
func (n *testNS) udp(t *testing.T, port int) *net.UDPConn {
	t.Helper()
	c, err := inNS(n.ns, func() (*net.UDPConn, error) {
		return net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// recvAll reads datagrams until none arrives for quiet.
func recvAll(c *net.UDPConn, quiet time.Duration) []string {
	var got []string
	buf := make([]byte, 2048)
	for range 1000 {
		_ = c.SetReadDeadline(time.Now().Add(quiet))
		n, err := c.Read(buf)
		if err != nil {
			return got
		}
		got = append(got, string(buf[:n]))
	}
	return got
}

// tables lists the nftables tables of the namespace.
func (n *testNS) tables(t *testing.T) []string {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(n.ns.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseLasting()
	tabs, err := c.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tab := range tabs {
		names = append(names, tab.Name)
	}
	return names
}

func netnsList(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	m := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			m[f[0]] = true
		}
	}
	return m
}

// checkNoNewNetns fails if ip netns list shows a namespace that the demo
// could have made. Other programs (tests of other packages) may add and
// remove their own meanwhile.
func checkNoNewNetns(t *testing.T, before map[string]bool) {
	t.Helper()
	for name := range netnsList(t) {
		if !before[name] && (strings.Contains(name, "client") || strings.Contains(name, "server") || strings.Contains(name, "demo") || strings.HasPrefix(name, "nfq-")) {
			t.Errorf("namespace %s appeared", name)
		}
	}
}

// netnsOf returns the network namespaces (as "net:[inode]") that process
// pid holds open by descriptor.
func netnsOf(pid int) map[string]bool {
	m := map[string]bool{}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, _ := os.ReadDir(dir)
	for _, fd := range fds {
		if l, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil && strings.HasPrefix(l, "net:[") {
			m[l] = true
		}
	}
	return m
}

// netnsAlive reports which of the namespaces some process still uses (as
// its namespace, a thread's, or an open descriptor) or a mount holds.
func netnsAlive(t *testing.T, nss map[string]bool) []string {
	t.Helper()
	var alive []string
	seen := map[string]bool{}
	note := func(l string) {
		if nss[l] && !seen[l] {
			seen[l] = true
			alive = append(alive, l)
		}
	}
	links, _ := filepath.Glob("/proc/[0-9]*/task/[0-9]*/ns/net")
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, p := range append(links, fds...) {
		if l, err := os.Readlink(p); err == nil {
			note(l)
		}
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for ns := range nss {
		if bytes.Contains(mi, []byte(ns)) {
			note(ns)
		}
	}
	return alive
}

// demoPasses checks the text output of a successful demo.
func demoPasses(t *testing.T, r result) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("nfq demo: status %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"all 6 promises held; the sandbox is removed", "PASS  echo", "PASS  blocked", "PASS  rewrite", "PASS  offload", "PASS  ping", "PASS  kernel",
		"accept rewritten", "drop", "accept mark=0x2a", "veth-s"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "FAIL") {
		t.Errorf("demo output has a FAIL:\n%s", r.stdout)
	}
}

func TestDemo(t *testing.T) {
	requireKernel(t)
	before := netnsList(t)
	p := startNfq(t, "installing rules", "demo", "--duration", "1s")
	// The sandbox's namespaces, held by the demo's descriptors.
	var nss map[string]bool
	for range 100 {
		if nss = netnsOf(p.cmd.Process.Pid); len(nss) >= 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(nss) < 2 {
		t.Errorf("the demo holds %d namespaces, want 2", len(nss))
	}
	if alive := netnsAlive(t, nss); len(alive) != len(nss) {
		t.Errorf("netnsAlive sees %v of the running demo's %v", alive, nss)
	}
	r := result{code: p.wait(t, 90*time.Second), stdout: p.stdout.String(), stderr: p.stderr.String()}
	demoPasses(t, r)
	// A live line: time, id, hook, in, out, proto, addresses, length, verdict.
	found := false
	for _, l := range strings.Split(r.stdout, "\n") {
		f := strings.Fields(l)
		if len(f) >= 12 && f[2] == "input" && f[3] == demoServerIf && f[5] == "udp" && strings.HasPrefix(f[6], demoClientIP+":") &&
			strings.HasPrefix(f[8], demoServerIP+":7002") && f[11] == "drop" {
			found = true
		}
	}
	if !found {
		t.Errorf("no live line of a dropped datagram:\n%s", r.stdout)
	}
	for _, want := range []string{"creating network namespaces", "installing rules"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("progress lacks %q: %s", want, r.stderr)
		}
	}
	if alive := netnsAlive(t, nss); len(alive) > 0 {
		t.Errorf("namespaces of the demo still exist: %v", alive)
	}
	checkNoNewNetns(t, before)
}

func TestDemoJSON(t *testing.T) {
	requireKernel(t)
	before := netnsList(t)
	r := runNfq(t, 90*time.Second, "demo", "--duration", "1s", "--json")
	if r.code != 0 {
		t.Fatalf("status %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var first sandboxInfo
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first.Type != "sandbox" || len(first.Rules) != 3 || first.Backend == "" {
		t.Errorf("first line %q: %+v %v", lines[0], first, err)
	}
	var sum demoSummary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	if sum.Type != "summary" || !sum.OK || sum.Failed != 0 || sum.Skipped != 0 || sum.Passed != 6 || len(sum.Checks) != 6 || !sum.CleanedUp {
		t.Errorf("summary %+v", sum)
	}
	if sum.Kernel.Bypassed == 0 || int(sum.Kernel.Queued) != sum.Packets {
		t.Errorf("kernel %+v, packets %d", sum.Kernel, sum.Packets)
	}
	counts := map[string]int{}
	for _, l := range lines[1 : len(lines)-1] {
		var ev packetEvent
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Type != "packet" {
			t.Fatalf("line %q: %v", l, err)
		}
		if ev.Hook != "input" || ev.In != demoServerIf || ev.Dst != demoServerIP || ev.Len == 0 {
			t.Errorf("packet %+v", ev)
		}
		counts[ev.Flow]++
		switch {
		case ev.Verdict == "drop":
			counts["drop"]++
			if ev.Flow != "blocked" {
				t.Errorf("dropped %+v", ev)
			}
		case ev.Rewritten:
			counts["rewritten"]++
		case ev.VerdictMark != nil && *ev.VerdictMark == offloadMark:
			counts["marked"]++
		}
	}
	if counts["drop"] == 0 || counts["rewritten"] == 0 || counts["marked"] != 1 || counts["bulk"] != inspectPackets+1 || counts["ping"] == 0 || counts["echo"] == 0 {
		t.Errorf("packets per kind: %v", counts)
	}
	if len(lines)-2 != sum.Packets {
		t.Errorf("%d packet lines, summary says %d", len(lines)-2, sum.Packets)
	}
	checkNoNewNetns(t, before)
}

func TestDemoInterrupt(t *testing.T) {
	requireKernel(t)
	p := startNfq(t, "installing rules", "demo", "--duration", "30s")
	time.Sleep(700 * time.Millisecond)
	nss := netnsOf(p.cmd.Process.Pid)
	if len(nss) < 2 {
		t.Errorf("the demo holds %d namespaces, want 2", len(nss))
	}
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code := p.wait(t, 15*time.Second)
	if code != 1 {
		t.Errorf("status %d after Ctrl-C, want 1", code)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("took %v to stop", time.Since(start))
	}
	out := p.stdout.String()
	if !strings.Contains(out, "interrupted:") || !strings.Contains(out, "the sandbox is removed") || strings.Contains(out, "FAIL") {
		t.Errorf("output after Ctrl-C:\n%s", out)
	}
	if !strings.Contains(p.stderr.String(), "nfq demo: interrupted; the sandbox is removed") {
		t.Errorf("stderr after Ctrl-C: %s", p.stderr.String())
	}
	if alive := netnsAlive(t, nss); len(alive) > 0 {
		t.Errorf("namespaces of the demo still exist: %v", alive)
	}
}

// TestDemoUnprivileged runs the demo as an unprivileged user, inside a user
// namespace it makes itself. It skips where unprivileged user namespaces
// are not allowed.
func TestDemoUnprivileged(t *testing.T) {
	requireKernel(t)
	bin := nfqBinary(t)
	probe := exec.Command("unshare", "-Urn", "true")
	probe.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if out, err := probe.CombinedOutput(); err != nil {
		t.Skipf("unprivileged user namespaces are not allowed here: %v %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "demo", "--duration", "1s")
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	r := result{code: code, stdout: out.String(), stderr: errb.String()}
	// /proc/net/netfilter/nfnetlink_queue may be hidden in a user
	// namespace: then the kernel check is skipped, not failed.
	if strings.Contains(r.stdout, "SKIP  kernel") {
		r.stdout = strings.Replace(r.stdout, "5 promises held, 1 could not be checked here", "all 6 promises held", 1)
		r.stdout = strings.Replace(r.stdout, "SKIP  kernel", "PASS  kernel", 1)
	}
	demoPasses(t, r)
}

func TestWatchRuleJSONAndCapture(t *testing.T) {
	n := newTestNS(t)
	rx := n.udp(t, 0)
	port := rx.LocalAddr().(*net.UDPAddr).Port
	tx := n.udp(t, 0)
	capFile := filepath.Join(t.TempDir(), "q.pcapng")
	p := startNfq(t, "watching queue", "watch", "-q", "5", "--netns", n.path, "--rule", fmt.Sprintf("udp dport %d", port),
		"--count", "4", "--json", "--mark", "0x10", "-w", capFile)
	if tabs := n.tables(t); len(tabs) != 1 || !strings.HasPrefix(tabs[0], "nfq-watch-") {
		t.Errorf("tables while watching: %v", tabs)
	}
	for i := 1; i <= 2; i++ {
		if _, err := tx.WriteToUDP(fmt.Appendf(nil, "nfq-test-%d", i), rx.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
	}
	got := recvAll(rx, time.Second)
	if strings.Join(got, ",") != "nfq-test-1,nfq-test-2" {
		t.Errorf("receiver got %q", got)
	}
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("status %d\n%s", code, p.stderr.String())
	}
	// Each datagram passes the output and the input hook: 4 packets.
	lines := strings.Split(strings.TrimSpace(p.stdout.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4:\n%s", len(lines), p.stdout.String())
	}
	hooks := map[string]int{}
	for _, l := range lines {
		var ev packetEvent
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		hooks[ev.Hook]++
		if ev.Type != "packet" || ev.Queue != 5 || ev.Proto != "udp" || int(ev.Dport) != port || ev.Src != "127.0.0.1" ||
			ev.Verdict != "accept" || ev.VerdictMark == nil || *ev.VerdictMark != 0x10 || ev.PayloadLen != len("nfq-test-1") {
			t.Errorf("event %s", l)
		}
		if (ev.Hook == "output" && ev.Out != "lo") || (ev.Hook == "input" && ev.In != "lo") {
			t.Errorf("interfaces of %s", l)
		}
	}
	if hooks["input"] != 2 || hooks["output"] != 2 {
		t.Errorf("hooks %v", hooks)
	}
	if !strings.Contains(p.stderr.String(), "4 packets shown") || !strings.Contains(p.stderr.String(), "4 written to") {
		t.Errorf("stderr: %s", p.stderr.String())
	}
	if tabs := n.tables(t); len(tabs) != 0 {
		t.Errorf("tables left after exit: %v", tabs)
	}

	// The capture, read back with gopacket.
	f, err := os.Open(capFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != layers.LinkTypeRaw {
		t.Errorf("link type %v", r.LinkType())
	}
	np := 0
	for {
		data, ci, opts, err := r.ReadPacketDataWithOptions()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		np++
		if len(data) < 28 || data[0] != 0x45 || !bytes.HasPrefix(data[28:], []byte("nfq-test-")) || ci.Length != len(data) {
			t.Errorf("packet %d: %x", np, data)
		}
		if len(opts.Comments) != 1 || !strings.Contains(opts.Comments[0], "verdict=accept verdict-mark=0x10") ||
			!strings.Contains(opts.Comments[0], "queue=5") || !strings.Contains(opts.Comments[0], "hook=") {
			t.Errorf("packet %d comment %q", np, opts.Comments)
		}
	}
	if np != 4 {
		t.Errorf("capture has %d packets, want 4", np)
	}

	// And with tshark, where installed.
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Log("tshark is not installed: capture checked with gopacket only")
		return
	}
	var terr bytes.Buffer
	tshark := exec.Command("tshark", "-r", capFile, "-T", "fields", "-e", "udp.dstport", "-e", "frame.comment")
	tshark.Stderr = &terr
	out, err := tshark.Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s%s", err, out, terr.String())
	}
	tl := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(tl) != 4 {
		t.Fatalf("tshark shows %d packets:\n%s", len(tl), out)
	}
	for _, l := range tl {
		if !strings.HasPrefix(l, strconv.Itoa(port)+"\t") || !strings.Contains(l, "verdict=accept") {
			t.Errorf("tshark line %q", l)
		}
	}
}

// userRule installs the test's own queue rule, as a user would, through the
// rules package.
func userRule(t *testing.T, n *testNS, chains ...chainRules) *rules.Table {
	t.Helper()
	tab, err := rules.Open(&rules.Config{Table: "user", NetNSPath: n.path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tab.Close() })
	for _, ch := range chains {
		if err := tab.Add(ch.c, ch.rs...); err != nil {
			t.Fatal(err)
		}
	}
	return tab
}

// chainRules are rules for one chain.
type chainRules struct {
	c  rules.Chain
	rs []rules.Rule
}

func TestWatchDropOnUserRule(t *testing.T) {
	n := newTestNS(t)
	rx := n.udp(t, 0)
	port := uint16(rx.LocalAddr().(*net.UDPAddr).Port)
	tx := n.udp(t, 0)
	userRule(t, n, chainRules{rules.Chain{Hook: rules.HookOutput}, []rules.Rule{
		{Match: rules.Match{Proto: rules.ProtoUDP, DstPort: rules.Port(port)}, Queue: rules.Queue{Num: 6}},
	}})
	p := startNfq(t, "watching queue", "watch", "-q", "6", "--netns", n.path, "--verdict", "drop", "--count", "2")
	for i := 1; i <= 2; i++ {
		if _, err := tx.WriteToUDP([]byte("drop me"), rx.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
	}
	if got := recvAll(rx, 500*time.Millisecond); len(got) != 0 {
		t.Errorf("dropped datagrams arrived: %q", got)
	}
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("status %d\n%s", code, p.stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(p.stdout.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines:\n%s", p.stdout.String())
	}
	for i, l := range lines {
		want := fmt.Sprintf(" q6 #%d output out=lo UDP 127.0.0.1:%d > 127.0.0.1:%d length 7, len 35 -> drop", i+1, tx.LocalAddr().(*net.UDPAddr).Port, port)
		if !strings.HasSuffix(l, want) {
			t.Errorf("line %q, want suffix %q", l, want)
		}
	}
	if !strings.Contains(p.stderr.String(), "2 packets shown, 2 verdicts (0 accepted, 2 dropped)") {
		t.Errorf("stderr: %s", p.stderr.String())
	}
}

// TestWatchMarkReachesKernel checks that --mark marks the packet: a rule in
// a later chain counts the packets that carry the mark.
func TestWatchMarkReachesKernel(t *testing.T) {
	n := newTestNS(t)
	rx := n.udp(t, 0)
	port := uint16(rx.LocalAddr().(*net.UDPAddr).Port)
	tx := n.udp(t, 0)
	tab := userRule(t, n,
		chainRules{rules.Chain{Name: "q", Hook: rules.HookOutput}, []rules.Rule{
			{Match: rules.Match{Proto: rules.ProtoUDP, DstPort: rules.Port(port)}, Queue: rules.Queue{Num: 7}},
		}},
		chainRules{rules.Chain{Name: "later", Hook: rules.HookOutput, Priority: 10}, []rules.Rule{
			{Match: rules.Match{Mark: rules.MarkMatch{Op: rules.OpEq, Value: 0x77}}, Action: rules.ActionAccept, Comment: "marked"},
		}})
	p := startNfq(t, "watching queue", "watch", "-q", "7", "--netns", n.path, "--mark", "0x77", "--count", "3")
	for range 3 {
		if _, err := tx.WriteToUDP([]byte("mark me"), rx.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
	}
	if got := recvAll(rx, time.Second); len(got) != 3 {
		t.Errorf("receiver got %q", got)
	}
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("status %d\n%s", code, p.stderr.String())
	}
	ri, err := tab.Rules()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range ri {
		if r.Comment == "marked" && r.Packets != 3 {
			t.Errorf("the mark rule counted %d packets, want 3", r.Packets)
		}
	}
	if strings.Count(p.stdout.String(), "-> accept mark=0x77") != 3 {
		t.Errorf("output:\n%s", p.stdout.String())
	}
}

// TestWatchReplacesLeftoverRule checks that the temporary rule of a killed
// nfq watch lets traffic through (bypass) and that the next nfq watch of
// the same queue removes it.
func TestWatchReplacesLeftoverRule(t *testing.T) {
	n := newTestNS(t)
	rx := n.udp(t, 0)
	port := rx.LocalAddr().(*net.UDPAddr).Port
	tx := n.udp(t, 0)
	rule := fmt.Sprintf("udp dport %d", port)
	p := startNfq(t, "watching queue", "watch", "-q", "12", "--netns", n.path, "--rule", rule)
	p.cmd.Process.Kill()
	p.wait(t, 10*time.Second)
	if tabs := n.tables(t); len(tabs) != 1 || tabs[0] != "nfq-watch-12" {
		t.Fatalf("tables after kill: %v", tabs)
	}
	if _, err := tx.WriteToUDP([]byte("bypass"), rx.LocalAddr().(*net.UDPAddr)); err != nil {
		t.Fatal(err)
	}
	if got := recvAll(rx, time.Second); len(got) != 1 {
		t.Errorf("with nobody on the queue, the bypass rule let through %q", got)
	}
	p = startNfq(t, "watching queue", "watch", "-q", "12", "--netns", n.path, "--rule", rule, "--count", "2")
	if _, err := tx.WriteToUDP([]byte("seen"), rx.LocalAddr().(*net.UDPAddr)); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("status %d: %s", code, p.stderr.String())
	}
	if got := recvAll(rx, time.Second); len(got) != 1 || got[0] != "seen" {
		t.Errorf("receiver got %q", got)
	}
	if tabs := n.tables(t); len(tabs) != 0 {
		t.Errorf("tables left: %v", tabs)
	}
}

// TestWatchStopLosesNothing checks that packets queued after --count is
// reached still get the verdict rather than being dropped on exit.
func TestWatchStopLosesNothing(t *testing.T) {
	n := newTestNS(t)
	rx := n.udp(t, 0)
	port := rx.LocalAddr().(*net.UDPAddr).Port
	tx := n.udp(t, 0)
	p := startNfq(t, "watching queue", "-v", "watch", "-q", "13", "--netns", n.path, "--rule", fmt.Sprintf("udp dport %d", port), "--hook", "input", "--count", "1")
	const total = 100
	got := make(chan []string, 1)
	go func() { got <- recvAll(rx, 2*time.Second) }()
	for i := range total {
		if _, err := tx.WriteToUDP(fmt.Appendf(nil, "%d", i), rx.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
	}
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("status %d: %s", code, p.stderr.String())
	}
	if g := <-got; len(g) != total {
		t.Errorf("receiver got %d of %d datagrams\n%s", len(g), total, p.stderr.String())
	}
	if lines := strings.Count(p.stdout.String(), "\n"); lines != 1 {
		t.Errorf("%d lines shown, want 1", lines)
	}
}

func TestWatchInterrupt(t *testing.T) {
	n := newTestNS(t)
	p := startNfq(t, "watching queue", "watch", "-q", "8", "--netns", n.path, "--rule", "udp dport 9", "--hook", "input")
	if tabs := n.tables(t); len(tabs) != 1 {
		t.Errorf("tables while watching: %v", tabs)
	}
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Errorf("status %d after Ctrl-C\n%s", code, p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), "0 packets shown") {
		t.Errorf("stderr: %s", p.stderr.String())
	}
	if tabs := n.tables(t); len(tabs) != 0 {
		t.Errorf("tables left after Ctrl-C: %v", tabs)
	}
}

func TestWatchBusyQueue(t *testing.T) {
	n := newTestNS(t)
	conn, err := nfqueue.Open(11, &nfqueue.Config{NetNS: n.path})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := runNfq(t, 30*time.Second, "watch", "-q", "11", "--netns", n.path, "--bind-retry", "200ms")
	if r.code != 1 || !strings.Contains(r.stderr, "queue 11 is bound by another socket") || !strings.Contains(r.stderr, fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("status %d, stderr %q", r.code, r.stderr)
	}
	if l := strings.Split(strings.TrimSpace(r.stderr), "\n"); len(l) != 1 {
		t.Errorf("reason is not one line: %q", r.stderr)
	}
}

func TestStatsShowsOwner(t *testing.T) {
	n := newTestNS(t)
	conn, err := nfqueue.Open(9, &nfqueue.Config{NetNS: n.path})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	comm, _ := os.ReadFile("/proc/self/comm")
	me := strings.TrimSpace(string(comm))

	r := runNfq(t, 30*time.Second, "stats", "--netns", n.path, "--json")
	if r.code != 0 {
		t.Fatalf("status %d: %s", r.code, r.stderr)
	}
	var tab statsTable
	if err := json.Unmarshal([]byte(r.stdout), &tab); err != nil {
		t.Fatalf("%q: %v", r.stdout, err)
	}
	if len(tab.Queues) != 1 {
		t.Fatalf("queues %+v", tab.Queues)
	}
	q := tab.Queues[0]
	if q.Queue != 9 || q.PID != os.Getpid() || q.Process != me || q.PortID != conn.PortID() || q.CopyMode != "packet" {
		t.Errorf("queue row %+v; want queue 9 of pid %d (%s), port %d", q, os.Getpid(), me, conn.PortID())
	}

	r = runNfq(t, 30*time.Second, "stats", "--netns", n.path)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 2 {
		t.Fatalf("status %d:\n%s", r.code, r.stdout)
	}
	f := strings.Fields(lines[1])
	if len(f) < 9 || f[0] != "9" || f[2] != strconv.Itoa(os.Getpid()) || f[3] != me {
		t.Errorf("row %q", lines[1])
	}

	r = runNfq(t, 30*time.Second, "stats", "--netns", n.path, "--watch", "--count", "2", "--interval", "200ms")
	if r.code != 0 || strings.Count(r.stdout, "PKT/S") != 2 || !strings.Contains(r.stdout, "0.0") {
		t.Errorf("status %d:\n%s", r.code, r.stdout)
	}
}

func TestStatsEmpty(t *testing.T) {
	n := newTestNS(t)
	r := runNfq(t, 30*time.Second, "stats", "--netns", n.path)
	if r.code != 0 || !strings.Contains(r.stdout, "QUEUE") || !strings.Contains(r.stdout, "no queue is bound") {
		t.Errorf("status %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runNfq(t, 30*time.Second, "stats", "--netns", "/nonexistent")
	if r.code != 1 || !strings.Contains(r.stderr, "network namespace") {
		t.Errorf("bad --netns: status %d, %q", r.code, r.stderr)
	}
}
