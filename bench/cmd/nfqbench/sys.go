package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// userHZ is the unit of the CPU times in /proc (USER_HZ; 100 on every Linux
// architecture this benchmark targets).
const userHZ = 100

// run runs a command to completion with a time limit and returns its
// combined output.
func run(ctx context.Context, limit time.Duration, name string, args ...string) (string, error) {
	return runIn(ctx, "", limit, name, args...)
}

// netns is a network namespace created by this program.
type netns struct {
	name string
	// reads is served by a goroutine whose OS thread lives inside the
	// namespace, so it reads the namespace's /proc/thread-self/net files
	// without starting a process.
	reads chan nsRead
}

type nsRead struct {
	path string
	resp chan nsReadResult
}

type nsReadResult struct {
	data []byte
	err  error
}

func createNetns(ctx context.Context, name string) (*netns, error) {
	if _, err := run(ctx, 10*time.Second, "ip", "netns", "add", name); err != nil {
		return nil, err
	}
	ns := &netns{name: name, reads: make(chan nsRead)}
	if _, err := run(ctx, 10*time.Second, "ip", "-n", name, "link", "set", "lo", "up"); err != nil {
		return ns, err
	}
	errc := make(chan error, 1)
	go func() {
		// The thread is never unlocked: when the goroutine ends, the
		// runtime discards the thread with its namespace.
		runtime.LockOSThread()
		fd, err := unix.Open(filepath.Join("/run/netns", name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			err = unix.Setns(fd, unix.CLONE_NEWNET)
			unix.Close(fd)
		}
		errc <- err
		if err != nil {
			return
		}
		for r := range ns.reads {
			b, err := os.ReadFile(r.path)
			r.resp <- nsReadResult{b, err}
		}
	}()
	if err := <-errc; err != nil {
		return ns, fmt.Errorf("enter netns %s: %w", name, err)
	}
	return ns, nil
}

// readNetFile reads /proc/thread-self/net/<rel> inside the namespace.
func (ns *netns) readNetFile(rel string) ([]byte, error) {
	resp := make(chan nsReadResult, 1)
	ns.reads <- nsRead{path: "/proc/thread-self/net/" + rel, resp: resp}
	r := <-resp
	return r.data, r.err
}

func (ns *netns) delete() error {
	if ns.reads != nil {
		close(ns.reads)
		ns.reads = nil
	}
	_, err := run(context.Background(), 10*time.Second, "ip", "netns", "del", ns.name)
	return err
}

// exec returns the argv that runs argv inside the namespace pinned to cpu.
func (ns *netns) wrap(cpu int, argv ...string) []string {
	return append([]string{"ip", "netns", "exec", ns.name, "taskset", "-c", strconv.Itoa(cpu)}, argv...)
}

// iptables runs iptables inside the namespace.
func (ns *netns) iptables(ctx context.Context, args ...string) (string, error) {
	return run(ctx, 20*time.Second, "ip", append([]string{"netns", "exec", ns.name, "iptables", "-w"}, args...)...)
}

// removeStaleNetns deletes namespaces named prefix-PID left behind by a
// previous run of this program that was killed before it could clean up.
func removeStaleNetns(ctx context.Context, prefix string) {
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), prefix+"-")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(rest)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue // its owner still runs
		}
		logf("removing stale namespace %s", e.Name())
		run(ctx, 10*time.Second, "ip", "netns", "del", e.Name())
	}
}

// queueLine is one line of /proc/net/netfilter/nfnetlink_queue.
type queueLine struct {
	Queue, PortID, Total, CopyMode, CopyRange uint32
	Dropped, UserDropped, IDSeq               uint32
}

func (ns *netns) queueStats(queue uint32) (queueLine, bool, error) {
	b, err := ns.readNetFile("netfilter/nfnetlink_queue")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return queueLine{}, false, nil
		}
		return queueLine{}, false, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		var v [8]uint32
		for i := range v {
			n, err := strconv.ParseUint(f[i], 10, 32)
			if err != nil {
				return queueLine{}, false, fmt.Errorf("nfnetlink_queue: %q", line)
			}
			v[i] = uint32(n)
		}
		if v[0] == queue {
			return queueLine{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]}, true, nil
		}
	}
	return queueLine{}, false, nil
}

// procCPU returns the user and system CPU time of a whole process (all its
// threads, live and dead) in USER_HZ ticks.
func procCPU(pid int) (user, sys uint64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errors.New("bad /proc/PID/stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, 0, errors.New("short /proc/PID/stat")
	}
	user, err1 := strconv.ParseUint(f[11], 10, 64)
	sys, err2 := strconv.ParseUint(f[12], 10, 64)
	return user, sys, errors.Join(err1, err2)
}

// cpuTimes is one CPU's line of /proc/stat, in USER_HZ ticks.
type cpuTimes struct {
	User, Sys, Idle, IRQ, SoftIRQ uint64 // User includes nice
}

// Busy is the non-idle time (steal and iowait excluded).
func (c cpuTimes) Busy() uint64 { return c.User + c.Sys + c.IRQ + c.SoftIRQ }

// readCPUTimes returns the times of every CPU, indexed by CPU number.
func readCPUTimes() (map[int]cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	out := map[int]cpuTimes{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		n, err := strconv.Atoi(f[0][3:])
		if err != nil {
			continue
		}
		var v [8]uint64
		for i := 1; i < 8; i++ {
			v[i], _ = strconv.ParseUint(f[i], 10, 64)
		}
		out[n] = cpuTimes{User: v[1] + v[2], Sys: v[3], Idle: v[4], IRQ: v[6], SoftIRQ: v[7]}
	}
	return out, nil
}

// child is a process started by this program. Every child runs in its own
// process group and gets SIGKILL if this program dies.
type child struct {
	name   string
	cmd    *exec.Cmd
	stderr *tailBuffer
	done   chan struct{}
	err    error
}

var (
	childrenMu sync.Mutex
	children   = map[*child]struct{}{}
)

func startChild(name string, argv, env []string, stdout io.Writer) (*child, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Env = append(os.Environ(), env...)
	c := &child{name: name, cmd: cmd, stderr: &tailBuffer{max: 8 << 10}, done: make(chan struct{})}
	cmd.Stdout = stdout
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	childrenMu.Lock()
	children[c] = struct{}{}
	childrenMu.Unlock()
	go func() {
		c.err = cmd.Wait()
		childrenMu.Lock()
		delete(children, c)
		childrenMu.Unlock()
		close(c.done)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to grace for the child to exit, then
// kills its process group. It reports whether the child exited by itself
// with status 0.
func (c *child) stop(grace time.Duration) (clean bool) {
	if c.exited() {
		return c.err == nil
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return c.err == nil
	case <-time.After(grace):
	}
	syscall.Kill(-c.pid(), syscall.SIGKILL)
	<-c.done
	return false
}

// killChildren kills the process group of every child still running.
func killChildren() {
	childrenMu.Lock()
	list := make([]*child, 0, len(children))
	for c := range children {
		list = append(list, c)
	}
	childrenMu.Unlock()
	for _, c := range list {
		c.stop(2 * time.Second)
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}

// scanLines delivers the lines read from r until EOF, then closes r.
func scanLines(r io.ReadCloser) <-chan string {
	lines := make(chan string, 16)
	go func() {
		defer r.Close()
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return lines
}

func lookPath(name string) (string, error) { return exec.LookPath(name) }

// runIn is run with a working directory.
func runIn(ctx context.Context, dir string, limit time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// kworkerTicks returns the CPU time, in ticks, of each kernel worker
// thread (kworker/*), by pid. Those threads run deferred kernel work such as
// hash table resizes.
func kworkerTicks() map[int]uint64 {
	out := map[int]uint64{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i, j := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if i < 0 || j < i || !bytes.HasPrefix(b[i+1:j], []byte("kworker/")) {
			continue
		}
		f := strings.Fields(string(b[j+1:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseUint(f[11], 10, 64)
		s, _ := strconv.ParseUint(f[12], 10, 64)
		out[pid] = u + s
	}
	return out
}

// kworkerDelta is the kernel workers' CPU time between two kworkerTicks
// calls. A worker that exited in between is left out; one that appeared
// counts whole.
func kworkerDelta(before, after map[int]uint64) uint64 {
	var sum uint64
	for pid, v := range after {
		if v0, ok := before[pid]; ok {
			if v >= v0 {
				sum += v - v0
			}
		} else {
			sum += v
		}
	}
	return sum
}
