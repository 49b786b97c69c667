package nfqueue_test

import (
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nfqueue-go/nfqueue/compat/nfqueue"
	"github.com/nfqueue-go/nfqueue/internal/nstest"
)

// TestKernelDropAccept runs the compatibility API against the real kernel,
// in a throw-away network namespace: an iptables NFQUEUE rule queues UDP
// datagrams sent over loopback, and the callback drops one and accepts
// the other.
func TestKernelDropAccept(t *testing.T) {
	ns := nstest.New(t)
	rx := ns.ListenPacket("udp4", "127.0.0.1:0")
	tx := ns.ListenPacket("udp4", "127.0.0.1:0")
	port := rx.LocalAddr().(*net.UDPAddr).Port
	ns.IPTables(false, "-A", "OUTPUT", "-p", "udp", "--dport", fmt.Sprint(port), "-j", "NFQUEUE", "--queue-num", "11")

	q := new(nfqueue.Queue)
	nfqueue.SetNetNS(q, ns.Path)
	seen := make(chan string, 10)
	setUp(t, q, func(p *nfqueue.Payload) int {
		data := p.Data[28:] // after the IPv4 and UDP headers
		seen <- string(data)
		if bytes.HasPrefix(data, []byte("drop")) {
			p.SetVerdict(nfqueue.NF_DROP)
		} else {
			p.SetVerdict(nfqueue.NF_ACCEPT)
		}
		return 0
	}, 11)
	t.Cleanup(q.Close)
	if err := q.SetMode(nfqueue.NFQNL_COPY_PACKET); err != nil {
		t.Fatal(err)
	}
	stop := loop(t, q)

	for _, msg := range []string{"drop me", "accept me"} {
		if _, err := tx.WriteTo([]byte(msg), rx.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	got, ok := nstest.Recv(rx, 5*time.Second)
	if !ok || string(got) != "accept me" {
		t.Fatalf("received %q (ok=%v), want %q", got, ok, "accept me")
	}
	if extra, ok := nstest.Recv(rx, 200*time.Millisecond); ok {
		t.Fatalf("dropped datagram arrived: %q", extra)
	}
	stop()
	close(seen)
	var all []string
	for s := range seen {
		all = append(all, s)
	}
	if fmt.Sprint(all) != "[drop me accept me]" {
		t.Errorf("callback saw %q", all)
	}
	if err := q.DestroyQueue(); err != nil {
		t.Fatal(err)
	}
}
