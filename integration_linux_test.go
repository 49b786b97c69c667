package nfqueue_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nfqueue-go/nfqueue"
	"github.com/nfqueue-go/nfqueue/internal/nstest"
)

// udpPath is a namespace with a UDP receiver and sender on loopback, and an
// OUTPUT rule that queues the sender's datagrams to a queue.
type udpPath struct {
	ns   *nstest.NS
	v6   bool
	rx   net.PacketConn
	tx   net.PacketConn
	dst  net.Addr
	port int
}

func newUDPPath(t *testing.T, v6 bool, queueArgs ...string) *udpPath {
	t.Helper()
	ns := nstest.New(t)
	network, addr := "udp4", "127.0.0.1:0"
	if v6 {
		network, addr = "udp6", "[::1]:0"
	}
	u := &udpPath{ns: ns, v6: v6}
	u.rx = ns.ListenPacket(network, addr)
	u.tx = ns.ListenPacket(network, addr)
	u.dst = u.rx.LocalAddr()
	u.port = u.dst.(*net.UDPAddr).Port
	if queueArgs != nil {
		ns.IPTables(v6, append([]string{"-A", "OUTPUT", "-p", "udp", "--dport", fmt.Sprint(u.port), "-j", "NFQUEUE"}, queueArgs...)...)
	}
	return u
}

func (u *udpPath) send(t *testing.T, payload []byte) {
	t.Helper()
	// Queued datagrams hold the sender's buffer until their verdict: a
	// burst larger than it blocks.
	u.tx.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := u.tx.WriteTo(payload, u.dst); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// open opens queue inside the path's namespace.
func (u *udpPath) open(t *testing.T, queue uint16, cfg *nfqueue.Config) *nfqueue.Conn {
	t.Helper()
	var c nfqueue.Config
	if cfg != nil {
		c = *cfg
	}
	c.NetNS = u.ns.Path
	conn, err := nfqueue.Open(queue, &c)
	if err != nil {
		t.Fatalf("Open(%d): %v", queue, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// serve runs Serve in the background until the test ends or the returned
// function is called; that function returns when Serve has.
func serve(t *testing.T, conn *nfqueue.Conn, h nfqueue.Handler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := conn.Serve(ctx, h); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Serve: %v", err)
		}
	}()
	stop = func() { cancel(); wg.Wait() }
	t.Cleanup(stop)
	return stop
}

func TestIntegrationAcceptDrop(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "ipv4", true: "ipv6"}[v6], func(t *testing.T) {
			u := newUDPPath(t, v6, "--queue-num", "7")
			conn := u.open(t, 7, nil)
			var mu sync.Mutex
			var seen []nfqueue.Packet
			serve(t, conn, func(p *nfqueue.Packet) nfqueue.Verdict {
				mu.Lock()
				seen = append(seen, *p.Clone())
				mu.Unlock()
				if bytes.HasPrefix(udpPayload(p), []byte("drop")) {
					return nfqueue.Drop
				}
				return nfqueue.Accept
			})
			u.send(t, []byte("drop me"))
			u.send(t, []byte("accept me"))
			got, ok := nstest.Recv(u.rx, 5*time.Second)
			if !ok || string(got) != "accept me" {
				t.Fatalf("received %q (ok=%v), want %q", got, ok, "accept me")
			}
			if extra, ok := nstest.Recv(u.rx, 200*time.Millisecond); ok {
				t.Fatalf("dropped datagram arrived: %q", extra)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != 2 {
				t.Fatalf("handler saw %d packets, want 2", len(seen))
			}
			p := seen[1]
			wantFamily, wantProto := nfqueue.FamilyIPv4, uint16(0x0800)
			if v6 {
				wantFamily, wantProto = nfqueue.FamilyIPv6, 0x86dd
			}
			if p.Family != wantFamily || p.HwProtocol != wantProto || p.Hook != nfqueue.HookOutput || p.Queue != 7 {
				t.Errorf("packet metadata: family %v proto %#x hook %v queue %d", p.Family, p.HwProtocol, p.Hook, p.Queue)
			}
			if p.ID == 0 || p.ID == seen[0].ID || !p.Has(nfqueue.AttrOutDev) || p.OutDev == 0 {
				t.Errorf("packet ids %d, %d; outdev %d (present %v)", seen[0].ID, p.ID, p.OutDev, p.Present)
			}
		})
	}
}

// udpPayload returns the UDP payload of an IPv4 or IPv6 packet.
func udpPayload(p *nfqueue.Packet) []byte {
	b := p.Payload
	switch {
	case len(b) >= 20 && b[0]>>4 == 4:
		ihl := int(b[0]&0x0f) * 4
		if len(b) >= ihl+8 {
			return b[ihl+8:]
		}
	case len(b) >= 48 && b[0]>>4 == 6:
		return b[48:]
	}
	return nil
}
