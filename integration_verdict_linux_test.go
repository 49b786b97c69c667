package nfqueue_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nfqueue-go/nfqueue"
	"github.com/nfqueue-go/nfqueue/internal/nstest"
)

// TestIntegrationRewritePayload replaces each datagram's payload in the
// verdict and checks the receiver gets the new bytes, which it only does if
// the rebuilt packet's lengths and checksums are right.
func TestIntegrationRewritePayload(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "ipv4", true: "ipv6"}[v6], func(t *testing.T) {
			u := newUDPPath(t, v6, "--queue-num", "3")
			conn := u.open(t, 3, nil)
			serve(t, conn, func(p *nfqueue.Packet) nfqueue.Verdict {
				return nfqueue.Accept.WithPayload(rewriteUDP(t, p.Payload, []byte("rewritten by the queue, longer than before")))
			})
			u.send(t, []byte("original"))
			got, ok := nstest.Recv(u.rx, 5*time.Second)
			if want := "rewritten by the queue, longer than before"; !ok || string(got) != want {
				t.Fatalf("received %q (ok=%v), want %q", got, ok, want)
			}
		})
	}
}

// rewriteUDP returns a copy of the IPv4 or IPv6 UDP packet pkt with a new
// payload, lengths and checksums.
func rewriteUDP(t *testing.T, pkt, payload []byte) []byte {
	t.Helper()
	var hdr int
	v6 := pkt[0]>>4 == 6
	if v6 {
		hdr = 40
	} else {
		hdr = int(pkt[0]&0x0f) * 4
	}
	out := append(append([]byte(nil), pkt[:hdr+8]...), payload...)
	udp := out[hdr:]
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	binary.BigEndian.PutUint16(udp[6:], 0)
	var sum uint32
	if v6 {
		binary.BigEndian.PutUint16(out[4:], uint16(len(udp)))
		sum = csumAdd(sum, out[8:40])
		sum += uint32(len(udp)) + 17
	} else {
		binary.BigEndian.PutUint16(out[2:], uint16(len(out)))
		binary.BigEndian.PutUint16(out[10:], 0)
		binary.BigEndian.PutUint16(out[10:], ^csumFold(csumAdd(0, out[:hdr])))
		sum = csumAdd(sum, out[12:20])
		sum += uint32(len(udp)) + 17
	}
	c := ^csumFold(csumAdd(sum, udp))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(udp[6:], c)
	return out
}

func csumAdd(sum uint32, b []byte) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	return sum
}

func csumFold(sum uint32) uint16 {
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

// TestIntegrationMark sets a mark in the verdict and lets a rule of a later
// table at the same hook drop what carries it.
func TestIntegrationMark(t *testing.T) {
	u := newUDPPath(t, false)
	port := fmt.Sprint(u.port)
	u.ns.IPTables(false, "-t", "mangle", "-A", "OUTPUT", "-p", "udp", "--dport", port, "-j", "NFQUEUE", "--queue-num", "4")
	u.ns.IPTables(false, "-A", "OUTPUT", "-p", "udp", "--dport", port, "-m", "mark", "--mark", "0x7", "-j", "DROP")
	conn := u.open(t, 4, nil)
	serve(t, conn, func(p *nfqueue.Packet) nfqueue.Verdict {
		if bytes.HasPrefix(udpPayload(p), []byte("mark")) {
			return nfqueue.Accept.WithMark(7)
		}
		return nfqueue.Accept
	})
	u.send(t, []byte("mark me"))
	u.send(t, []byte("plain"))
	got, ok := nstest.Recv(u.rx, 5*time.Second)
	if !ok || string(got) != "plain" {
		t.Fatalf("received %q (ok=%v), want %q", got, ok, "plain")
	}
	if extra, ok := nstest.Recv(u.rx, 200*time.Millisecond); ok {
		t.Fatalf("marked datagram was not dropped by the mark rule: %q", extra)
	}
	if n := ruleCount(t, u.ns, "filter", "OUTPUT", "mark match 0x7"); n != 1 {
		t.Fatalf("mark rule matched %d packets, want 1", n)
	}
}

// ruleCount returns the packet counter of the first rule of chain whose
// listing contains match.
func ruleCount(t *testing.T, ns *nstest.NS, table, chain, match string) int {
	t.Helper()
	out := ns.Run("iptables", "-w", "-t", table, "-L", chain, "-v", "-x", "-n")
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, match) {
			var n int
			if _, err := fmt.Sscan(line, &n); err == nil {
				return n
			}
		}
	}
	t.Fatalf("no rule with %q in:\n%s", match, out)
	return 0
}

// TestIntegrationRepeat gives Repeat with a mark: the packet runs the chain
// again, passes the queue rule (which skips the mark) and arrives. The
// handler sees it once and a counting rule sees it twice, once marked.
func TestIntegrationRepeat(t *testing.T) {
	u := newUDPPath(t, false)
	port := fmt.Sprint(u.port)
	u.ns.IPTables(false, "-A", "OUTPUT", "-p", "udp", "--dport", port, "-m", "mark", "--mark", "0x9")
	u.ns.IPTables(false, "-A", "OUTPUT", "-p", "udp", "--dport", port, "-m", "mark", "!", "--mark", "0x9", "-j", "NFQUEUE", "--queue-num", "5")
	conn := u.open(t, 5, nil)
	var calls atomic.Int32
	serve(t, conn, func(p *nfqueue.Packet) nfqueue.Verdict {
		calls.Add(1)
		return nfqueue.Repeat.WithMark(9)
	})
	u.send(t, []byte("again"))
	if got, ok := nstest.Recv(u.rx, 5*time.Second); !ok || string(got) != "again" {
		t.Fatalf("received %q (ok=%v)", got, ok)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("handler called %d times, want 1", n)
	}
	if n := ruleCount(t, u.ns, "filter", "OUTPUT", "mark match 0x9"); n != 1 {
		t.Fatalf("the repeated packet re-entered the chain %d times, want 1", n)
	}
}

// TestIntegrationQueueTo moves packets from one queue to another, and to a
// queue nobody listens on, with and without bypass.
func TestIntegrationQueueTo(t *testing.T) {
	u := newUDPPath(t, false, "--queue-num", "10")
	first := u.open(t, 10, nil)
	second := u.open(t, 11, nil)
	var onSecond atomic.Int32
	serve(t, first, func(p *nfqueue.Packet) nfqueue.Verdict {
		switch string(udpPayload(p)) {
		case "to 11":
			return nfqueue.QueueTo(11)
		case "to 12":
			return nfqueue.QueueTo(12) // nobody listens: dropped
		default:
			return nfqueue.QueueTo(12).WithBypass()
		}
	})
	serve(t, second, func(p *nfqueue.Packet) nfqueue.Verdict {
		onSecond.Add(1)
		return nfqueue.Accept
	})
	for _, msg := range []string{"to 11", "to 12", "to 12 with bypass"} {
		u.send(t, []byte(msg))
		got, ok := nstest.Recv(u.rx, 2*time.Second)
		want := msg != "to 12"
		if ok != want || (ok && string(got) != msg) {
			t.Errorf("%q: received %q (ok=%v), want delivered=%v", msg, got, ok, want)
		}
	}
	if n := onSecond.Load(); n != 1 {
		t.Errorf("queue 11 saw %d packets, want 1", n)
	}
}

// TestIntegrationCloseFreesQueue closes a Conn and binds the same queue at
// once; a second Conn on a bound queue gets ErrQueueBusy naming the owner.
func TestIntegrationCloseFreesQueue(t *testing.T) {
	ns := nstest.New(t)
	cfg := &nfqueue.Config{NetNS: ns.Path}
	a, err := nfqueue.Open(20, cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = nfqueue.Open(20, cfg)
	var busy *nfqueue.QueueBusyError
	if !errors.Is(err, nfqueue.ErrQueueBusy) || !errors.As(err, &busy) {
		t.Fatalf("second Open: %v, want ErrQueueBusy", err)
	}
	if busy.OwnerPortID != a.PortID() || busy.OwnerPID != os.Getpid() {
		t.Errorf("owner: port %d pid %d, want port %d pid %d (%v)", busy.OwnerPortID, busy.OwnerPID, a.PortID(), os.Getpid(), err)
	}
	var oe *nfqueue.OpError
	if !errors.As(err, &oe) || oe.Op != "bind" || oe.Queue != 20 {
		t.Errorf("error %v is not a bind OpError for queue 20", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	b, err := nfqueue.Open(20, cfg)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	b.Close()
}

// TestIntegrationSizes queues a datagram with an empty payload and one of
// 65000 bytes; both arrive whole and intact.
func TestIntegrationSizes(t *testing.T) {
	u := newUDPPath(t, false, "--queue-num", "6")
	conn := u.open(t, 6, nil)
	lens := make(chan int, 4)
	serve(t, conn, func(p *nfqueue.Packet) nfqueue.Verdict {
		lens <- len(p.Payload)
		if p.Truncated() {
			t.Errorf("packet %d truncated: %d of %d bytes", p.ID, len(p.Payload), p.CapLen)
		}
		return nfqueue.Accept
	})
	big := bytes.Repeat([]byte("0123456789"), 6500)
	for _, payload := range [][]byte{{}, big} {
		u.send(t, payload)
		got, ok := nstest.Recv(u.rx, 5*time.Second)
		if !ok || !bytes.Equal(got, payload) {
			t.Fatalf("%d-byte datagram: received %d bytes (ok=%v)", len(payload), len(got), ok)
		}
		if n := <-lens; n != 28+len(payload) {
			t.Errorf("queued packet of %d bytes, want %d", n, 28+len(payload))
		}
	}
}

// TestIntegrationUID queues a datagram sent by another user and checks the
// packet names that user.
func TestIntegrationUID(t *testing.T) {
	if nstest.InUserNS() {
		t.Skip("a user namespace maps only its root: no other user to send as")
	}
	u := newUDPPath(t, false, "--queue-num", "8")
	conn := u.open(t, 8, &nfqueue.Config{UIDGID: true})
	type ids struct {
		uid, gid uint32
		ok       bool
	}
	got := make(chan ids, 1)
	serve(t, conn, func(p *nfqueue.Packet) nfqueue.Verdict {
		got <- ids{p.UID, p.GID, p.Has(nfqueue.AttrUID) && p.Has(nfqueue.AttrGID)}
		return nfqueue.Accept
	})
	u.ns.Run("setpriv", "--reuid", "65534", "--regid", "65533", "--clear-groups", "bash", "-c",
		fmt.Sprintf("echo hello > /dev/udp/127.0.0.1/%d", u.port))
	select {
	case g := <-got:
		if !g.ok || g.uid != 65534 || g.gid != 65533 {
			t.Fatalf("uid %d gid %d (present %v), want 65534 65533", g.uid, g.gid, g.ok)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no packet")
	}
}
