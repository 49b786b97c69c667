package nfqgopacket_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"net"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/nfqueue-go/nfqueue"
	"github.com/nfqueue-go/nfqueue/nfqgopacket"
)

// queued returns an IPv4/UDP packet as the kernel would queue it from an
// ipv4-family hook; in a real program it comes from Conn.Serve.
func queued(dport layers.UDPPort, payload string) *nfqueue.Packet {
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IP{192, 0, 2, 1}, DstIP: net.IP{198, 51, 100, 7}}
	b, err := nfqgopacket.Serialize(nil, ip, &layers.UDP{SrcPort: 40000, DstPort: dport}, gopacket.Payload(payload))
	if err != nil {
		log.Fatal(err)
	}
	return &nfqueue.Packet{ID: 1, Family: nfqueue.FamilyIPv4, HwProtocol: 0x0800, Payload: b}
}

func ExampleDecode() {
	p := queued(9, "hello")

	// NoCopy: the packet aliases p.Payload, so use it only in the handler.
	pkt := nfqgopacket.Decode(p, gopacket.DecodeOptions{NoCopy: true, Lazy: true})
	for _, l := range pkt.Layers() {
		fmt.Println(l.LayerType())
	}
	fmt.Printf("%q\n", pkt.ApplicationLayer().Payload())
	// Output:
	// IPv4
	// UDP
	// Payload
	// "hello"
}

func ExampleFirstLayer() {
	bridged := &nfqueue.Packet{Family: nfqueue.FamilyBridge, HwProtocol: 0x86dd,
		L2Header: make([]byte, 14), Payload: []byte{0x60}}
	fmt.Println(nfqgopacket.FirstLayer(bridged))
	bridged.L2Header = nil
	fmt.Println(nfqgopacket.FirstLayer(bridged))
	// Output:
	// Ethernet
	// IPv6
}

// A handler that decodes every packet without allocating. The Parser is
// used by one Serve goroutine only.
func ExampleParser() {
	pr := nfqgopacket.NewParser()
	handler := func(p *nfqueue.Packet) nfqueue.Verdict {
		if _, err := pr.Decode(p); err != nil {
			return nfqueue.Accept // not ours to judge
		}
		if udp := pr.UDP(); udp != nil && udp.DstPort == 9 && bytes.Contains(pr.Payload(), []byte("evil")) {
			return nfqueue.Drop
		}
		return nfqueue.Accept
	}

	fmt.Println(handler(queued(9, "good packet")))
	fmt.Println(handler(queued(9, "evil packet")))
	// Output:
	// accept
	// drop
}

// Rewrite a UDP payload in a Serve handler; lengths and checksums are
// fixed and the kernel receives the new packet with the Accept verdict.
func ExampleParser_Rewrite() {
	pr := nfqgopacket.NewParser()
	handler := func(p *nfqueue.Packet) nfqueue.Verdict {
		v, err := pr.Rewrite(p, func(payload []byte) []byte {
			return bytes.ReplaceAll(payload, []byte("world"), []byte("gophers"))
		})
		if err != nil {
			return nfqueue.Accept // truncated, fragment, not TCP/UDP/ICMP: leave it
		}
		return v.WithMark(1) // options can be added as usual
	}

	v := handler(queued(9, "hello, world"))
	b, _ := v.Payload()
	udp := gopacket.NewPacket(b, layers.LayerTypeIPv4, gopacket.Default).Layer(layers.LayerTypeUDP).(*layers.UDP)
	fmt.Println(v.Kind(), len(b), udp.Length)
	fmt.Printf("%q\n", udp.Payload)
	// Output:
	// accept 42 22
	// "hello, gophers"
}

// Serve a queue and rewrite what it carries. One Parser per Serve
// goroutine; with an nfqueue.Set, one per queue.
func ExampleParser_Rewrite_serve() {
	conn, err := nfqueue.Open(0, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	pr := nfqgopacket.NewParser()
	err = conn.Serve(context.Background(), func(p *nfqueue.Packet) nfqueue.Verdict {
		v, err := pr.Rewrite(p, func(payload []byte) []byte {
			return bytes.ToUpper(payload) // same length: safe for TCP too
		})
		if err != nil {
			return nfqueue.Accept
		}
		return v
	})
	if err != nil {
		log.Fatal(err)
	}
}

// Build a replacement packet by hand from decoded layers.
func ExampleSerialize() {
	p := queued(9, "ping")
	pkt := nfqgopacket.Decode(p, gopacket.Default)
	ip := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	udp := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
	udp.DstPort = 10009 // redirect

	b, err := nfqgopacket.Serialize(nil, ip, udp, gopacket.Payload(udp.Payload))
	if err != nil {
		log.Fatal(err)
	}
	v := nfqueue.Accept.WithPayload(b)
	fmt.Println(v)
	// Output:
	// accept payload=32B
}
