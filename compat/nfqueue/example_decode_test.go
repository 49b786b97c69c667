package nfqueue_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/nfqueue-go/nfqueue/compat/nfqueue"
)

// decodeAndAccept returns a callback that decodes each packet's IPv4
// header, and the ports of TCP and UDP, writes a summary to w and accepts
// the packet.
func decodeAndAccept(w io.Writer) nfqueue.Callback {
	return func(p *nfqueue.Payload) int {
		fmt.Fprintf(w, "packet %d: %s\n", p.Id, describeIPv4(p.Data))
		p.SetVerdict(nfqueue.NF_ACCEPT)
		return 0
	}
}

// describeIPv4 decodes an IPv4 packet by hand: its header, then the ports
// of a TCP or UDP header that follows.
func describeIPv4(b []byte) string {
	if len(b) < 20 || b[0]>>4 != 4 {
		return "not IPv4"
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if ihl < 20 || len(b) < ihl {
		return "bad IPv4 header"
	}
	src := netip.AddrFrom4([4]byte(b[12:16]))
	dst := netip.AddrFrom4([4]byte(b[16:20]))
	s := fmt.Sprintf("IPv4 %v -> %v, ttl %d, %d bytes", src, dst, b[8], total)
	frag := binary.BigEndian.Uint16(b[6:8]) & 0x1fff
	l4 := b[ihl:]
	switch proto := b[9]; {
	case frag != 0:
		s += fmt.Sprintf(", fragment of protocol %d", proto)
	case proto == syscall.IPPROTO_TCP && len(l4) >= 20:
		s += fmt.Sprintf(", TCP port %d -> %d", binary.BigEndian.Uint16(l4[0:2]), binary.BigEndian.Uint16(l4[2:4]))
	case proto == syscall.IPPROTO_UDP && len(l4) >= 8:
		s += fmt.Sprintf(", UDP port %d -> %d, %d bytes of data", binary.BigEndian.Uint16(l4[0:2]),
			binary.BigEndian.Uint16(l4[2:4]), len(l4)-8)
	default:
		s += fmt.Sprintf(", protocol %d", proto)
	}
	return s
}

// The decoding consumer of nfqueue-go, which used gopacket, with the IPv4
// header decoded by hand: it prints a line per packet of queue 0 and
// accepts it, until Ctrl-C.
func Example_decode() {
	q := new(nfqueue.Queue)
	q.SetCallback(decodeAndAccept(os.Stdout))
	if err := q.Init(); err != nil {
		fmt.Println(err)
		return
	}
	defer q.Close()
	q.Unbind(syscall.AF_INET)
	q.Bind(syscall.AF_INET)
	if err := q.CreateQueue(0); err != nil {
		fmt.Println(err)
		return
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	go func() {
		<-sig
		q.StopLoop()
	}()

	if err := q.Loop(); err != nil {
		fmt.Println(err)
	}
	q.DestroyQueue()
}
