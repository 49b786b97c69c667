//go:build linux

// Package nstest runs integration tests in throw-away network namespaces:
// each test gets its own namespace with loopback up, its own iptables rules
// and its own sockets, removed when the test ends, so the host's network
// and firewall are never touched.
//
// Tests that need it call New. Without root it skips them, unless the
// environment sets NFQUEUE_INTEGRATION=1: then it fails them, so that CI
// cannot pass by skipping.
package nstest

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nfqueue-go/nfqueue/internal/nlsock"
)

// NS is a network namespace made for one test.
type NS struct {
	Name string // name under /run/netns
	Path string // namespace file, for Config.NetNS
	t    testing.TB
}

// Required reports whether kernel tests must run (NFQUEUE_INTEGRATION=1).
func Required() bool { return os.Getenv("NFQUEUE_INTEGRATION") == "1" }

// userNSEnv marks a test process that ReexecInUserNS started.
const userNSEnv = "NFQUEUE_IN_USERNS"

// InUserNS reports whether the tests run as a normal user inside a user
// namespace (see ReexecInUserNS). There the kernel's queue statistics are
// unreadable.
func InUserNS() bool { return os.Getenv(userNSEnv) == "1" }

// ReexecInUserNS runs the test binary again as root of a new user, network
// and mount namespace, when a normal user asks for it with
// NFQUEUE_USERNS=1 and the kernel allows unprivileged user namespaces. A
// tmpfs on /run there lets New create named network namespaces. It returns
// the child's exit code, or -1 when there is nothing to do.
func ReexecInUserNS() int {
	if os.Geteuid() == 0 || os.Getenv("NFQUEUE_USERNS") != "1" || InUserNS() {
		return -1
	}
	exe, err := os.Executable()
	if err != nil {
		return -1
	}
	args := append([]string{"--user", "--map-root-user", "--net", "--mount", "sh", "-c",
		`mount -t tmpfs tmpfs /run && mkdir -p /run/netns && exec "$0" "$@"`, exe}, os.Args[1:]...)
	cmd := exec.Command("unshare", args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), userNSEnv+"=1")
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		return 1
	}
	return 0
}

// Skip skips the test with reason, or fails it when kernel tests are required.
func Skip(t testing.TB, reason string) {
	t.Helper()
	if Required() {
		t.Fatalf("NFQUEUE_INTEGRATION=1 but %s", reason)
	}
	t.Skip(reason)
}

// New creates a namespace with loopback up and deletes it when t ends.
func New(t testing.TB) *NS {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "kernel tests need root")
	}
	for _, tool := range []string{"ip", "iptables", "ip6tables"} {
		if _, err := exec.LookPath(tool); err != nil {
			Skip(t, tool+" is not installed")
		}
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	ns := &NS{Name: "nfqt-" + hex.EncodeToString(rnd[:]), t: t}
	ns.Path = "/run/netns/" + ns.Name
	if out, err := exec.Command("ip", "netns", "add", ns.Name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns.Name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns.Name, err, out)
		}
	})
	ns.Run("ip", "link", "set", "lo", "up")
	return ns
}

// Run runs a command inside the namespace and returns its output; it fails
// the test if the command fails.
func (ns *NS) Run(name string, args ...string) string {
	ns.t.Helper()
	out, err := ns.Try(name, args...)
	if err != nil {
		ns.t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// Try runs a command inside the namespace and returns its output and error.
func (ns *NS) Try(name string, args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// IPTables runs iptables (or ip6tables when v6) inside the namespace.
func (ns *NS) IPTables(v6 bool, args ...string) {
	ns.t.Helper()
	tool := "iptables"
	if v6 {
		tool = "ip6tables"
	}
	ns.Run(tool, append([]string{"-w"}, args...)...)
}

// Do runs fn on a thread inside the namespace; sockets it opens stay there.
func (ns *NS) Do(fn func() error) {
	ns.t.Helper()
	if err := nlsock.InNetNS(ns.Path, fn); err != nil {
		ns.t.Fatal(err)
	}
}

// ListenPacket opens a packet socket inside the namespace (e.g. "udp4",
// "127.0.0.1:0") and closes it when the test ends.
func (ns *NS) ListenPacket(network, addr string) net.PacketConn {
	ns.t.Helper()
	var pc net.PacketConn
	ns.Do(func() error {
		var err error
		pc, err = net.ListenPacket(network, addr)
		return err
	})
	ns.t.Cleanup(func() { pc.Close() })
	return pc
}

// Listen opens a stream listener inside the namespace.
func (ns *NS) Listen(network, addr string) net.Listener {
	ns.t.Helper()
	var l net.Listener
	ns.Do(func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	ns.t.Cleanup(func() { l.Close() })
	return l
}

// Dial connects from inside the namespace.
func (ns *NS) Dial(network, addr string) net.Conn {
	ns.t.Helper()
	var c net.Conn
	ns.Do(func() error {
		var err error
		c, err = net.DialTimeout(network, addr, 5*time.Second)
		return err
	})
	ns.t.Cleanup(func() { c.Close() })
	return c
}

// Recv reads one datagram from pc within timeout; ok is false on timeout.
func Recv(pc net.PacketConn, timeout time.Duration) ([]byte, bool) {
	buf := make([]byte, 1<<16)
	_ = pc.SetReadDeadline(time.Now().Add(timeout))
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		return nil, false
	}
	return buf[:n], true
}
