package nfqueue_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nfqueue-go/nfqueue"
	"github.com/nfqueue-go/nfqueue/internal/nstest"
)

// TestIntegrationCloseUnblocks closes a Conn while ReadPacket and Serve
// block; both return at once, Serve with nil and ReadPacket with ErrClosed.
func TestIntegrationCloseUnblocks(t *testing.T) {
	ns := nstest.New(t)
	for _, mode := range []string{"read", "serve"} {
		t.Run(mode, func(t *testing.T) {
			conn, err := nfqueue.Open(30, &nfqueue.Config{NetNS: ns.Path})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				if mode == "read" {
					var p nfqueue.Packet
					done <- conn.ReadPacket(&p)
				} else {
					done <- conn.Serve(context.Background(), func(*nfqueue.Packet) nfqueue.Verdict { return nfqueue.Accept })
				}
			}()
			time.Sleep(50 * time.Millisecond)
			conn.Close()
			select {
			case err := <-done:
				if mode == "read" && !errors.Is(err, nfqueue.ErrClosed) {
					t.Fatalf("ReadPacket after Close: %v, want ErrClosed", err)
				}
				if mode == "serve" && err != nil {
					t.Fatalf("Serve after Close: %v, want nil", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Close did not unblock the reader")
			}
			var p nfqueue.Packet
			if err := conn.ReadPacket(&p); !errors.Is(err, net.ErrClosed) {
				t.Errorf("ReadPacket on a closed Conn: %v", err)
			}
			if err := conn.SetVerdict(1, nfqueue.Accept); !errors.Is(err, nfqueue.ErrClosed) {
				t.Errorf("SetVerdict on a closed Conn: %v", err)
			}
		})
	}
}

// TestIntegrationContext cancels Serve's context before and during Serve,
// and lets its deadline pass; Serve returns ctx.Err() and the Conn still
// works afterwards.
func TestIntegrationContext(t *testing.T) {
	u := newUDPPath(t, false, "--queue-num", "31")
	conn := u.open(t, 31, nil)
	accept := func(*nfqueue.Packet) nfqueue.Verdict { return nfqueue.Accept }

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := conn.Serve(ctx, accept); !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve with a cancelled context: %v", err)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := conn.Serve(ctx, accept); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Serve past its deadline: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Serve returned %v after its deadline", d)
	}

	ctx, cancel = context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- conn.Serve(ctx, accept) }()
	u.send(t, []byte("while serving"))
	if _, ok := nstest.Recv(u.rx, 5*time.Second); !ok {
		t.Fatal("no packet while serving")
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve after cancel: %v", err)
	}

	// The Conn is still bound and usable by the pull API.
	u.send(t, []byte("after serve"))
	var p nfqueue.Packet
	if err := conn.ReadPacket(&p); err != nil {
		t.Fatal(err)
	}
	if err := conn.SetVerdict(p.ID, nfqueue.Accept); err != nil {
		t.Fatal(err)
	}
	if got, ok := nstest.Recv(u.rx, 5*time.Second); !ok || string(got) != "after serve" {
		t.Fatalf("received %q (ok=%v)", got, ok)
	}
}

// TestIntegrationVerdictOnce gives a packet two verdicts and one for an id
// never delivered: both are refused without reaching the kernel.
func TestIntegrationVerdictOnce(t *testing.T) {
	u := newUDPPath(t, false, "--queue-num", "32")
	conn := u.open(t, 32, nil)
	u.send(t, []byte("once"))
	var p nfqueue.Packet
	if err := conn.ReadPacket(&p); err != nil {
		t.Fatal(err)
	}
	if err := conn.SetVerdict(p.ID, nfqueue.Accept); err != nil {
		t.Fatal(err)
	}
	err := conn.SetVerdict(p.ID, nfqueue.Drop)
	var oe *nfqueue.OpError
	if !errors.Is(err, nfqueue.ErrVerdictTwice) || !errors.As(err, &oe) || oe.ID != p.ID {
		t.Fatalf("second verdict: %v, want ErrVerdictTwice for id %d", err, p.ID)
	}
	if err := conn.SetVerdict(p.ID+1000, nfqueue.Accept); !errors.Is(err, nfqueue.ErrUnknownPacket) {
		t.Fatalf("verdict for an unknown id: %v, want ErrUnknownPacket", err)
	}
	if got, ok := nstest.Recv(u.rx, 5*time.Second); !ok || string(got) != "once" {
		t.Fatalf("received %q (ok=%v)", got, ok)
	}
	if s := conn.Stats(); s.Received != 1 || s.Accepted != 1 || s.Dropped != 0 || s.Outstanding != 0 || s.KernelErr != nil || s.Kernel.LastID != p.ID {
		t.Errorf("stats: %+v", s)
	}
}

// TestIntegrationServeTwice runs a second Serve while one runs.
func TestIntegrationServeTwice(t *testing.T) {
	ns := nstest.New(t)
	conn, err := nfqueue.Open(33, &nfqueue.Config{NetNS: ns.Path})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	accept := func(*nfqueue.Packet) nfqueue.Verdict { return nfqueue.Accept }
	errc := make(chan error, 1)
	go func() { errc <- conn.Serve(ctx, accept) }()
	time.Sleep(50 * time.Millisecond)
	if err := conn.Serve(ctx, accept); !errors.Is(err, nfqueue.ErrServing) {
		t.Fatalf("second Serve: %v, want ErrServing", err)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

// TestIntegrationConntrackUnsupported asks for conntrack entries on a
// kernel that may lack CONFIG_NETFILTER_NETLINK_GLUE_CT: either the queue
// delivers them, or Open fails with ErrNotSupported and EOPNOTSUPP.
func TestIntegrationConntrackUnsupported(t *testing.T) {
	u := newUDPPath(t, false, "--queue-num", "34")
	conn, err := nfqueue.Open(34, &nfqueue.Config{NetNS: u.ns.Path, Conntrack: true})
	if err != nil {
		if !errors.Is(err, nfqueue.ErrNotSupported) || !errors.Is(err, syscall.EOPNOTSUPP) {
			t.Fatalf("Open with Conntrack: %v, want ErrNotSupported", err)
		}
		t.Logf("this kernel refuses conntrack: %v", err)
		// The refused request bound nothing: the queue is free.
		c, err := nfqueue.Open(34, &nfqueue.Config{NetNS: u.ns.Path})
		if err != nil {
			t.Fatalf("Open after a refused Open: %v", err)
		}
		c.Close()
		return
	}
	defer conn.Close()
	u.send(t, []byte("ct"))
	var p nfqueue.Packet
	if err := conn.ReadPacket(&p); err != nil {
		t.Fatal(err)
	}
	if !p.Has(nfqueue.AttrConntrack) || !p.Has(nfqueue.AttrCtInfo) {
		t.Errorf("no conntrack attributes: %v", p.Present)
	}
	conn.SetVerdict(p.ID, nfqueue.Accept)
}

// TestIntegrationTCPAndICMP queues a TCP connection carrying data both ways
// and an ICMP echo, and accepts them all.
func TestIntegrationTCPAndICMP(t *testing.T) {
	ns := nstest.New(t)
	ns.IPTables(false, "-A", "OUTPUT", "-p", "tcp", "-j", "NFQUEUE", "--queue-num", "35")
	ns.IPTables(false, "-A", "OUTPUT", "-p", "icmp", "-j", "NFQUEUE", "--queue-num", "35")
	conn, err := nfqueue.Open(35, &nfqueue.Config{NetNS: ns.Path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	protos := make(chan byte, 1024)
	serve(t, conn, func(p *nfqueue.Packet) nfqueue.Verdict {
		if len(p.Payload) > 9 {
			select {
			case protos <- p.Payload[9]:
			default:
			}
		}
		return nfqueue.Accept
	})

	l := ns.Listen("tcp4", "127.0.0.1:0")
	accepted := make(chan net.Conn, 1)
	echoed := make(chan struct{})
	go func() {
		defer close(echoed)
		c, err := l.Accept()
		if err != nil {
			return
		}
		accepted <- c
		io.Copy(c, c)
	}()
	// The connection's FIN may not pass a queue that is already closed:
	// close the server's end too.
	defer func() {
		select {
		case c := <-accepted:
			c.Close()
		default:
		}
		l.Close()
		<-echoed
	}()
	c := ns.Dial("tcp4", l.Addr().String())
	msg := []byte("through the queue and back")
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	echo := make([]byte, len(msg))
	if _, err := io.ReadFull(c, echo); err != nil || string(echo) != string(msg) {
		t.Fatalf("tcp echo %q: %v", echo, err)
	}

	icmp := ns.ListenPacket("ip4:icmp", "127.0.0.1")
	req := []byte{8, 0, 0, 0, 0x12, 0x34, 0, 1, 'p', 'i', 'n', 'g'}
	sum := ^csumFold(csumAdd(0, req))
	req[2], req[3] = byte(sum>>8), byte(sum)
	if _, err := icmp.WriteTo(req, &net.IPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
		t.Fatal(err)
	}
	gotReply := false
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !gotReply; {
		b, ok := nstest.Recv(icmp, time.Until(deadline))
		gotReply = ok && len(b) > 0 && b[0] == 0
	}
	if !gotReply {
		t.Fatal("no ICMP echo reply")
	}
	seen := map[byte]bool{}
	for len(protos) > 0 {
		seen[<-protos] = true
	}
	if !seen[6] || !seen[1] {
		t.Fatalf("queued protocols %v, want tcp (6) and icmp (1)", fmt.Sprint(seen))
	}
}

// TestIntegrationBusyPoll serves with BusyPoll: packets get their verdicts,
// cancelling the context stops Serve, and Close stops a busy ReadPacket.
func TestIntegrationBusyPoll(t *testing.T) {
	u := newUDPPath(t, false, "--queue-num", "36")
	conn := u.open(t, 36, &nfqueue.Config{BusyPoll: true})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- conn.Serve(ctx, func(*nfqueue.Packet) nfqueue.Verdict { return nfqueue.Accept })
	}()
	for i := range 10 {
		u.send(t, []byte(fmt.Sprint(i)))
		if _, ok := nstest.Recv(u.rx, 5*time.Second); !ok {
			t.Fatalf("datagram %d missing", i)
		}
	}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("busy Serve did not stop on cancel")
	}
	go func() {
		var p nfqueue.Packet
		errc <- conn.ReadPacket(&p)
	}()
	time.Sleep(20 * time.Millisecond)
	conn.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, nfqueue.ErrClosed) {
			t.Fatalf("ReadPacket: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop a busy ReadPacket")
	}
}

// TestIntegrationUserNS runs only as a normal user inside a user namespace
// (scripts/test does that): the queue works, and the statistics the kernel
// hides there come back as a permission error, not a failure.
func TestIntegrationUserNS(t *testing.T) {
	if !nstest.InUserNS() {
		t.Skip("runs inside a user namespace only (NFQUEUE_USERNS=1 as a normal user)")
	}
	u := newUDPPath(t, false, "--queue-num", "37")
	conn := u.open(t, 37, nil)
	serve(t, conn, func(*nfqueue.Packet) nfqueue.Verdict { return nfqueue.Accept })
	u.send(t, []byte("unprivileged"))
	if got, ok := nstest.Recv(u.rx, 5*time.Second); !ok || string(got) != "unprivileged" {
		t.Fatalf("received %q (ok=%v)", got, ok)
	}
	// Whether the kernel shows its statistics depends on which user
	// namespace owns the statistics file; either way Stats says so.
	s := conn.Stats()
	if s.Received != 1 || (s.KernelErr == nil && s.Kernel.LastID != 1) || (s.KernelErr != nil && !errors.Is(s.KernelErr, fs.ErrPermission)) {
		t.Fatalf("received %d, kernel %+v, kernel stats error %v", s.Received, s.Kernel, s.KernelErr)
	}
}

// TestIntegrationSecCtx asks for security contexts: the kernel either
// accepts (CONFIG_NETWORK_SECMARK) and packets flow, or Open says the kernel
// does not support it.
func TestIntegrationSecCtx(t *testing.T) {
	u := newUDPPath(t, false, "--queue-num", "38")
	conn, err := nfqueue.Open(38, &nfqueue.Config{NetNS: u.ns.Path, SecCtx: true, UIDGID: true})
	if err != nil {
		if !errors.Is(err, nfqueue.ErrNotSupported) || !errors.Is(err, syscall.EOPNOTSUPP) {
			t.Fatalf("Open with SecCtx: %v, want success or ErrNotSupported", err)
		}
		t.Logf("this kernel refuses security contexts: %v", err)
		return
	}
	defer conn.Close()
	u.send(t, []byte("labelled"))
	var p nfqueue.Packet
	if err := conn.ReadPacket(&p); err != nil {
		t.Fatal(err)
	}
	// Without an LSM labelling packets (secmark 0) the kernel sends no
	// context; with one, the context is text.
	if p.Has(nfqueue.AttrSecCtx) && len(p.SecCtx) == 0 {
		t.Errorf("empty security context attribute")
	}
	if want := hostUID(t); !p.Has(nfqueue.AttrUID) || p.UID != want {
		t.Errorf("uid %d (present %v), want %d", p.UID, p.Has(nfqueue.AttrUID), want)
	}
	if err := conn.SetVerdict(p.ID, nfqueue.Accept); err != nil {
		t.Fatal(err)
	}
	if _, ok := nstest.Recv(u.rx, 5*time.Second); !ok {
		t.Fatal("packet lost")
	}
}

// hostUID returns this process's uid as the initial user namespace sees it,
// which is what the kernel reports in NFQA_UID.
func hostUID(t *testing.T) uint32 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		t.Fatal(err)
	}
	uid := uint32(os.Getuid())
	for _, line := range strings.Split(string(b), "\n") {
		var inside, outside, count uint32
		if n, _ := fmt.Sscan(line, &inside, &outside, &count); n == 3 && uid >= inside && uid-inside < count {
			return outside + uid - inside
		}
	}
	t.Fatalf("uid %d not in uid_map:\n%s", uid, b)
	return 0
}
