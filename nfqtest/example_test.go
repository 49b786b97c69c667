package nfqtest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/nfqueue-go/nfqueue"
	"github.com/nfqueue-go/nfqueue/nfqtest"
)

// A unit test of a handler: inject packets, then check the verdicts the
// handler gave. The code is the body of a test function; t is its
// *testing.T.
func ExampleNew() {
	var t *testing.T // the test's *testing.T

	blockDNS := func(p *nfqueue.Packet) nfqueue.Verdict {
		// UDP to port 53 over IPv4: drop it, mark the rest.
		if len(p.Payload) >= 24 && p.Payload[9] == 17 && p.Payload[22] == 0 && p.Payload[23] == 53 {
			return nfqueue.Drop
		}
		return nfqueue.Accept.WithMark(1)
	}

	k := nfqtest.New(t, 0, nil)
	go k.Conn().Serve(context.Background(), blockDNS)

	client := netip.MustParseAddrPort("10.0.0.1:40000")
	dns := k.InjectBytes(nfqtest.UDP(client, netip.MustParseAddrPort("10.0.0.53:53"), []byte("query")))
	web := k.InjectBytes(nfqtest.UDP(client, netip.MustParseAddrPort("10.0.0.80:443"), []byte("quic")))

	for id, want := range map[uint32]nfqueue.Verdict{dns: nfqueue.Drop, web: nfqueue.Accept.WithMark(1)} {
		got, err := k.WaitVerdict(id, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Matches(want) {
			t.Errorf("got %v, want %v", got, want)
		}
	}
}

// Simulating a kernel error for one verdict, to test the error handling of
// a program: the Conn reports it through Config.OnError, tied to the
// packet.
func ExampleKernel_FailVerdict() {
	var t *testing.T // the test's *testing.T

	errc := make(chan error, 1)
	k := nfqtest.New(t, 0, &nfqueue.Config{OnError: func(err error) { errc <- err }})
	go k.Conn().Serve(context.Background(), func(*nfqueue.Packet) nfqueue.Verdict { return nfqueue.Accept })

	k.FailVerdict(42, syscall.ENOENT) // before the packet arrives
	k.Inject(nfqueue.Packet{ID: 42, Payload: nfqtest.UDP(
		netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:2"), nil)})

	err := <-errc
	var oe *nfqueue.OpError
	if !errors.As(err, &oe) || oe.ID != 42 || !errors.Is(err, syscall.ENOENT) {
		t.Errorf("OnError(%v)", err)
	}
}

// Building packet bytes for InjectBytes without a packet library.
func ExampleUDP() {
	b := nfqtest.UDP(netip.MustParseAddrPort("192.0.2.1:5000"), netip.MustParseAddrPort("192.0.2.2:53"), []byte("hi"))
	fmt.Printf("IPv%d, %d bytes, protocol %d\n", b[0]>>4, len(b), b[9])
	fmt.Printf("payload %q\n", b[28:])
	fmt.Println(bytes.Equal(b[12:16], []byte{192, 0, 2, 1}))
	// Output:
	// IPv4, 30 bytes, protocol 17
	// payload "hi"
	// true
}
