package nfqueue_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nfqueue-go/nfqueue"
	"github.com/nfqueue-go/nfqueue/internal/nstest"
)

// helperEnv names the helper a re-executed test binary runs (see TestMain).
const helperEnv = "NFQUEUE_TEST_HELPER"

// helperMain runs in a child process started by startHelper. It reads its
// queue and namespace from the environment and reports on stdout.
func helperMain(name string) int {
	queue, _ := strconv.Atoi(os.Getenv("NFQ_QUEUE"))
	cfg := &nfqueue.Config{NetNS: os.Getenv("NFQ_NETNS"), BindRetry: 2 * time.Second}
	switch name {
	case "open":
		// Report how Open fares with this process's privileges.
		conn, err := nfqueue.Open(uint16(queue), cfg)
		switch {
		case err == nil:
			conn.Close()
			fmt.Println("ok")
		case errors.Is(err, nfqueue.ErrPermission):
			fmt.Println("permission:", err)
		default:
			fmt.Println("error:", err)
		}
		return 0
	case "consumer":
		// Accept everything until killed.
		conn, err := nfqueue.Open(uint16(queue), cfg)
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		fmt.Println("ready")
		conn.Serve(context.Background(), func(*nfqueue.Packet) nfqueue.Verdict { return nfqueue.Accept })
		return 0
	case "closerace":
		return closeRace(uint16(queue), cfg, 40)
	}
	fmt.Println("unknown helper", name)
	return 2
}

// startHelper starts this test binary as helper name, inside ns, with extra
// arguments before it (such as setpriv or taskset) and returns its stdout.
func startHelper(t *testing.T, name string, queue int, ns *nstest.NS, env []string, wrap ...string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := append(append([]string{}, wrap...), exe)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), helperEnv+"="+name, fmt.Sprintf("NFQ_QUEUE=%d", queue), "NFQ_NETNS="+ns.Path)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, bufio.NewReader(out)
}

// flood sends UDP datagrams from inside u's namespace as fast as it can,
// for at most d and max datagrams, until the returned stop is called; stop
// returns how many were sent.
func flood(t *testing.T, u *udpPath, d time.Duration, max int) (stop func() int) {
	t.Helper()
	tx := u.ns.ListenPacket("udp4", "127.0.0.1:0")
	var sent atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		msg := make([]byte, 64)
		end := time.Now().Add(d)
		for i := 0; i < max; i++ {
			select {
			case <-done:
				return
			default:
			}
			if i%256 == 0 && time.Now().After(end) {
				return
			}
			if _, err := tx.WriteTo(msg, u.dst); err == nil {
				sent.Add(1)
			}
		}
	}()
	var once sync.Once
	stop = func() int {
		once.Do(func() { close(done); wg.Wait() })
		return int(sent.Load())
	}
	t.Cleanup(func() { stop() })
	return stop
}

// drainRx empties the receiver and returns how many datagrams it read.
func drainRx(pc net.PacketConn) int {
	n := 0
	for {
		if _, ok := nstest.Recv(pc, 100*time.Millisecond); !ok {
			return n
		}
		n++
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestIntegrationOverload floods a small socket buffer past a slow handler:
// Serve survives the overruns and counts them, the kernel's ids add up to
// what was received plus what the kernel dropped for lack of buffer, memory
// stays flat, and late packets still get through.
func TestIntegrationOverload(t *testing.T) {
	u := newUDPPath(t, false, "--queue-num", "60")
	stop := flood(t, u, 1500*time.Millisecond, 2_000_000)
	fds, goroutines := openFDs(t), runtime.NumGoroutine()
	conn, err := nfqueue.Open(60, &nfqueue.Config{NetNS: u.ns.Path, MaxQueueLen: 20000, ReadBufferSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		served <- conn.Serve(ctx, func(p *nfqueue.Packet) nfqueue.Verdict {
			time.Sleep(20 * time.Microsecond)
			return nfqueue.Accept
		})
	}()

	var heap [2]uint64
	for i := range heap {
		time.Sleep(500 * time.Millisecond)
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heap[i] = ms.HeapInuse
	}
	sent := stop()
	drainRx(u.rx)
	// Late packets get through: the loop is alive.
	late := 0
	for i := range 200 {
		u.send(t, []byte(fmt.Sprint("late ", i)))
		if _, ok := nstest.Recv(u.rx, time.Second); ok {
			late++
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	var s nfqueue.Stats
	for {
		s = conn.Stats()
		if (s.KernelErr == nil && s.Kernel.Waiting == 0 && uint64(s.Kernel.LastID) == s.Received+uint64(s.Kernel.UserDropped)) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-served; !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve ended with %v", err)
	}
	kernel := s.Kernel
	s = conn.Stats() // Serve counts its last verdicts as it returns
	s.Kernel = kernel
	t.Logf("sent %d, received %d, overruns %d, kernel: last id %d, user dropped %d, queue dropped %d; heap %d -> %d",
		sent, s.Received, s.Overruns, s.Kernel.LastID, s.Kernel.UserDropped, s.Kernel.QueueDropped, heap[0], heap[1])
	if late != 200 {
		t.Errorf("%d of 200 late datagrams arrived", late)
	}
	if s.Overruns == 0 || s.Kernel.UserDropped == 0 {
		t.Errorf("no overrun seen (overruns %d, user dropped %d): the test did not overload", s.Overruns, s.Kernel.UserDropped)
	}
	if uint64(s.Kernel.LastID) != s.Received+uint64(s.Kernel.UserDropped) {
		t.Errorf("kernel ids %d != received %d + dropped %d", s.Kernel.LastID, s.Received, s.Kernel.UserDropped)
	}
	if s.ReadBuffer < 64<<10 {
		t.Errorf("receive buffer %d, asked for %d", s.ReadBuffer, 64<<10)
	}
	if s.Received != s.Accepted || s.Outstanding != 0 {
		t.Errorf("received %d, accepted %d, outstanding %d", s.Received, s.Accepted, s.Outstanding)
	}
	if heap[1] > heap[0]+4<<20 {
		t.Errorf("heap grew from %d to %d under load", heap[0], heap[1])
	}
	conn.Close()
	if n := openFDs(t); n > fds {
		t.Errorf("%d open files after Close, %d before Open", n, fds)
	}
	if n := waitGoroutines(goroutines); n > goroutines {
		t.Errorf("%d goroutines after Close, %d before Open", n, goroutines)
	}
}

// waitGoroutines waits a little for the goroutine count to fall to want.
func waitGoroutines(want int) int {
	n := runtime.NumGoroutine()
	for i := 0; i < 100 && n > want; i++ {
		time.Sleep(10 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	return n
}

// TestIntegrationFailOpen stalls the handler: with FailOpen the kernel
// accepts what does not fit in the queue, so traffic keeps flowing, and no
// packet is dropped by the queue.
func TestIntegrationFailOpen(t *testing.T) {
	const n, qlen = 100, 16
	u := newUDPPath(t, false, "--queue-num", "61")
	conn := u.open(t, 61, &nfqueue.Config{FailOpen: true, MaxQueueLen: qlen})
	release := make(chan struct{})
	serve(t, conn, func(*nfqueue.Packet) nfqueue.Verdict {
		<-release
		return nfqueue.Accept
	})
	for i := range n {
		u.send(t, []byte(fmt.Sprint(i)))
	}
	passed := drainRx(u.rx)
	close(release)
	held := drainRx(u.rx)
	if passed < n-qlen-1 || passed+held != n {
		t.Fatalf("%d datagrams passed the stalled queue and %d after, want at least %d and %d in all", passed, held, n-qlen-1, n)
	}
	if s := conn.Stats(); s.KernelErr != nil || s.Kernel.QueueDropped != 0 || s.Kernel.UserDropped != 0 {
		t.Fatalf("kernel drops: %+v (%v)", s.Kernel, s.KernelErr)
	}
}

// TestIntegrationStartUnderTraffic opens the queue 20 times while a flood
// already hits it: every start binds and serves.
func TestIntegrationStartUnderTraffic(t *testing.T) {
	u := newUDPPath(t, false, "--queue-num", "62")
	stop := flood(t, u, 60*time.Second, 50_000_000)
	defer stop()
	for i := range 20 {
		conn, err := nfqueue.Open(62, &nfqueue.Config{NetNS: u.ns.Path})
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		var p nfqueue.Packet
		for range 10 {
			if err := conn.ReadPacket(&p); err != nil {
				if errors.Is(err, nfqueue.ErrOverrun) {
					continue
				}
				t.Fatalf("start %d: %v", i, err)
			}
			if err := conn.SetVerdict(p.ID, nfqueue.Accept); err != nil {
				t.Fatalf("start %d: %v", i, err)
			}
		}
		conn.Close()
	}
}

// TestIntegrationRestartAfterKill kills a consumer process with SIGKILL
// under a flood and binds the queue again at once, with BindRetry.
func TestIntegrationRestartAfterKill(t *testing.T) {
	u := newUDPPath(t, false, "--queue-num", "63")
	stop := flood(t, u, 60*time.Second, 50_000_000)
	defer stop()
	for i := range 3 {
		cmd, out := startHelper(t, "consumer", 63, u.ns, nil)
		if line, _ := out.ReadString('\n'); line != "ready\n" {
			t.Fatalf("consumer: %q", line)
		}
		time.Sleep(100 * time.Millisecond)
		cmd.Process.Kill()
		start := time.Now()
		conn, err := nfqueue.Open(63, &nfqueue.Config{NetNS: u.ns.Path, BindRetry: 5 * time.Second})
		if err != nil {
			t.Fatalf("restart %d: %v", i, err)
		}
		t.Logf("restart %d bound after %v", i, time.Since(start))
		var p nfqueue.Packet
		for got := 0; got < 10; {
			err := conn.ReadPacket(&p)
			if errors.Is(err, nfqueue.ErrOverrun) {
				continue
			}
			if err != nil {
				t.Fatalf("restart %d: %v", i, err)
			}
			conn.SetVerdict(p.ID, nfqueue.Accept)
			got++
		}
		conn.Close()
		cmd.Wait()
	}
}

// TestIntegrationCloseRace closes and cancels Serve at random moments under
// a flood, in a child process with GOMAXPROCS=1 pinned to one CPU.
func TestIntegrationCloseRace(t *testing.T) {
	u := newUDPPath(t, false, "--queue-num", "64")
	stop := flood(t, u, 60*time.Second, 50_000_000)
	defer stop()
	var wrap []string
	if p, err := exec.LookPath("taskset"); err == nil {
		wrap = []string{p, "-c", "0"}
	}
	cmd, out := startHelper(t, "closerace", 64, u.ns, []string{"GOMAXPROCS=1"}, wrap...)
	report, _ := io.ReadAll(out)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("close race: %v\n%s", err, report)
	}
	t.Logf("%s", report)
	// And the same in this process, under the race detector.
	if code := closeRace(64, &nfqueue.Config{NetNS: u.ns.Path, BindRetry: time.Second}, 20); code != 0 {
		t.Fatal("close race failed in the test process")
	}
}

// closeRace opens queue rounds times, serves it, and stops it at a random
// moment by Close or by cancelling the context, checking that Serve returns
// promptly and nothing is left behind. It prints a report; 0 means success.
func closeRace(queue uint16, cfg *nfqueue.Config, rounds int) int {
	base := runtime.NumGoroutine()
	var worst time.Duration
	for i := range rounds {
		conn, err := nfqueue.Open(queue, cfg)
		if err != nil {
			fmt.Println("open:", err)
			return 1
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			done <- conn.Serve(ctx, func(*nfqueue.Packet) nfqueue.Verdict { return nfqueue.Accept })
		}()
		time.Sleep(time.Duration(rand.IntN(5000)) * time.Microsecond)
		start := time.Now()
		if i%2 == 0 {
			conn.Close()
		} else {
			cancel()
		}
		select {
		case err := <-done:
			if i%2 == 0 && err != nil || i%2 == 1 && !errors.Is(err, context.Canceled) {
				fmt.Println("Serve returned", err)
				return 1
			}
		case <-time.After(5 * time.Second):
			fmt.Println("Serve did not return within 5s of", map[bool]string{true: "Close", false: "cancel"}[i%2 == 0])
			return 1
		}
		worst = max(worst, time.Since(start))
		cancel()
		conn.Close()
	}
	if n := waitGoroutines(base); n > base {
		fmt.Printf("%d goroutines left, %d at start\n", n, base)
		return 1
	}
	fmt.Printf("%d rounds, slowest stop %v, GOMAXPROCS %d\n", rounds, worst, runtime.GOMAXPROCS(0))
	return 0
}

// TestIntegrationCapNetAdminOnly opens a queue from a binary that holds only
// CAP_NET_ADMIN (setcap) and runs as an unprivileged user; without the
// capability Open says ErrPermission.
func TestIntegrationCapNetAdminOnly(t *testing.T) {
	if nstest.InUserNS() {
		t.Skip("a user namespace maps only its root: no other user to run as")
	}
	setcap, err := exec.LookPath("setcap")
	if err != nil {
		nstest.Skip(t, "setcap (libcap2-bin) is not installed")
	}
	ns := nstest.New(t)
	exe, _ := os.Executable()
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	for d := filepath.Dir(dir); d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	bin := filepath.Join(dir, "nfq-cap-test")
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	asNobody := []string{"ip", "netns", "exec", ns.Name, "setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"}
	run := func() string {
		cmd := exec.Command(asNobody[0], append(asNobody[1:], bin)...)
		cmd.Env = append(os.Environ(), helperEnv+"=open", "NFQ_QUEUE=65", "NFQ_NETNS=")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("helper: %v: %s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if out := run(); !strings.HasPrefix(out, "permission:") {
		t.Fatalf("without CAP_NET_ADMIN: %q, want ErrPermission", out)
	}
	if out, err := exec.Command(setcap, "cap_net_admin+ep", bin).CombinedOutput(); err != nil {
		t.Fatalf("setcap: %v: %s", err, out)
	}
	if out := run(); out != "ok" {
		t.Fatalf("with CAP_NET_ADMIN only: %q, want ok", out)
	}
}
