package nfqgopacket

import (
	"bytes"
	"net"
	"testing"
	"unsafe"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/nfqueue-go/nfqueue"
)

func TestFirstLayer(t *testing.T) {
	v4 := []byte{0x45, 0}
	v6 := []byte{0x60, 0}
	l2 := make([]byte, 14)
	for _, tc := range []struct {
		name string
		p    nfqueue.Packet
		want gopacket.LayerType
	}{
		{"ipv4 family", nfqueue.Packet{Family: nfqueue.FamilyIPv4, HwProtocol: 0x0800, Payload: v4}, layers.LayerTypeIPv4},
		{"ipv6 family", nfqueue.Packet{Family: nfqueue.FamilyIPv6, HwProtocol: 0x86dd, Payload: v6}, layers.LayerTypeIPv6},
		// The family decides, whatever the rest says.
		{"ipv6 family without hw protocol", nfqueue.Packet{Family: nfqueue.FamilyIPv6, Payload: v4}, layers.LayerTypeIPv6},
		{"bridge with L2 header", nfqueue.Packet{Family: nfqueue.FamilyBridge, HwProtocol: 0x86dd, L2Header: l2, Payload: v6}, layers.LayerTypeEthernet},
		{"bridge without L2 header, ipv6", nfqueue.Packet{Family: nfqueue.FamilyBridge, HwProtocol: 0x86dd, Payload: v6}, layers.LayerTypeIPv6},
		{"bridge without L2 header, arp", nfqueue.Packet{Family: nfqueue.FamilyBridge, HwProtocol: 0x0806, Payload: []byte{0, 1}}, layers.LayerTypeARP},
		{"bridge with a short L2 header", nfqueue.Packet{Family: nfqueue.FamilyBridge, HwProtocol: 0x0800, L2Header: l2[:6], Payload: v4}, layers.LayerTypeIPv4},
		{"unspec, version nibble 4", nfqueue.Packet{Payload: v4}, layers.LayerTypeIPv4},
		{"unspec, version nibble 6", nfqueue.Packet{Payload: v6}, layers.LayerTypeIPv6},
		{"unknown EtherType, version nibble", nfqueue.Packet{HwProtocol: 0x88b5, Payload: v6}, layers.LayerTypeIPv6},
		{"nothing to go by", nfqueue.Packet{Payload: []byte{0x10}}, gopacket.LayerTypePayload},
		{"empty", nfqueue.Packet{}, gopacket.LayerTypePayload},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := FirstLayer(&tc.p); got != tc.want {
				t.Errorf("FirstLayer = %v, want %v", got, tc.want)
			}
		})
	}
}

func layerTypes(pkt gopacket.Packet) []gopacket.LayerType {
	var ts []gopacket.LayerType
	for _, l := range pkt.Layers() {
		ts = append(ts, l.LayerType())
	}
	return ts
}

func equalTypes(a, b []gopacket.LayerType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// within reports whether s lies inside buf's memory.
func within(s, buf []byte) bool {
	if len(s) == 0 || len(buf) == 0 {
		return false
	}
	b := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	return p >= b && p+uintptr(len(s)) <= b+uintptr(len(buf))
}

func TestDecode(t *testing.T) {
	t.Run("ipv4 udp", func(t *testing.T) {
		p := udp4Packet(t, 53, "query")
		pkt := Decode(p, gopacket.DecodeOptions{})
		want := []gopacket.LayerType{layers.LayerTypeIPv4, layers.LayerTypeUDP, layers.LayerTypeDNS}
		if got := layerTypes(pkt); !equalTypes(got, want) && pkt.ErrorLayer() == nil {
			t.Errorf("layers %v, want %v", got, want)
		}
		ip := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if !ip.SrcIP.Equal(src4) || !ip.DstIP.Equal(dst4) {
			t.Errorf("addresses %v > %v", ip.SrcIP, ip.DstIP)
		}
		// Without NoCopy gopacket decodes a copy.
		if within(pkt.Data(), p.Payload) {
			t.Error("decoded packet aliases the payload without NoCopy")
		}
	})
	t.Run("ipv6 tcp nocopy", func(t *testing.T) {
		p := tcp6Packet(t, "hello")
		pkt := Decode(p, gopacket.DecodeOptions{NoCopy: true})
		want := []gopacket.LayerType{layers.LayerTypeIPv6, layers.LayerTypeTCP, gopacket.LayerTypePayload}
		if got := layerTypes(pkt); !equalTypes(got, want) {
			t.Fatalf("layers %v, want %v", got, want)
		}
		tcp := pkt.TransportLayer().(*layers.TCP)
		if tcp.DstPort != 8080 || len(tcp.Options) != len(tcpOptions) {
			t.Errorf("tcp %v options %v", tcp.DstPort, tcp.Options)
		}
		app := pkt.ApplicationLayer().Payload()
		if string(app) != "hello" {
			t.Errorf("payload %q", app)
		}
		if !within(app, p.Payload) {
			t.Error("with NoCopy the payload should alias the packet")
		}
	})
	t.Run("bridge", func(t *testing.T) {
		p := bridgePacket(t, "frame")
		pkt := Decode(p, gopacket.DecodeOptions{NoCopy: true})
		want := []gopacket.LayerType{layers.LayerTypeEthernet, layers.LayerTypeIPv4, layers.LayerTypeUDP, gopacket.LayerTypePayload}
		if got := layerTypes(pkt); !equalTypes(got, want) {
			t.Fatalf("layers %v, want %v", got, want)
		}
		eth := pkt.LinkLayer().(*layers.Ethernet)
		if !bytes.Equal(eth.SrcMAC, mac1) || !bytes.Equal(eth.DstMAC, mac2) || eth.EthernetType != layers.EthernetTypeIPv4 {
			t.Errorf("ethernet %v > %v %v", eth.SrcMAC, eth.DstMAC, eth.EthernetType)
		}
		if string(pkt.ApplicationLayer().Payload()) != "frame" {
			t.Errorf("payload %q", pkt.ApplicationLayer().Payload())
		}
		if within(pkt.Data(), p.Payload) || within(pkt.Data(), p.L2Header) {
			t.Error("a bridge frame is joined into a new slice")
		}
	})
	t.Run("truncated", func(t *testing.T) {
		p := udp4Packet(t, 9, "0123456789abcdef")
		truncate(p, len(p.Payload)-6)
		pkt := Decode(p, gopacket.DecodeOptions{})
		if !pkt.Metadata().Truncated {
			t.Error("Truncated not set in gopacket metadata")
		}
	})
}

func TestSerializeTunnel(t *testing.T) {
	// IPv6 in IPv4 carrying UDP: the UDP checksum covers the inner IPv6
	// pseudo-header, the nearest network layer before it.
	outer := ipv4(layers.IPProtocolIPv6)
	inner := ipv6(layers.IPProtocolUDP)
	udp := &layers.UDP{SrcPort: 1, DstPort: 2}
	b, err := Serialize(nil, outer, inner, udp, gopacket.Payload("tunnel"))
	if err != nil {
		t.Fatal(err)
	}
	verify(t, b) // checks the outer IPv4 header
	verify(t, b[20:])
	pkt := gopacket.NewPacket(b, layers.LayerTypeIPv4, gopacket.Default)
	if pkt.Layer(layers.LayerTypeUDP) == nil {
		t.Fatalf("no UDP layer: %v", pkt)
	}
}

func TestSerializeErrors(t *testing.T) {
	// A pseudo-header checksum without a network layer before it.
	if _, err := Serialize(nil, &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}); err == nil {
		t.Error("ICMPv6 without a network layer serialized")
	}
	// An IPv4 address that is not one.
	ip := ipv4(layers.IPProtocolUDP)
	ip.SrcIP = net.IP{1, 2, 3}
	if _, err := Serialize(nil, ip, &layers.UDP{}); err == nil {
		t.Error("bad IPv4 address serialized")
	}
}

func TestSerializeReusesBuffer(t *testing.T) {
	buf := gopacket.NewSerializeBuffer()
	a, err := Serialize(buf, ipv4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 1, DstPort: 2}, gopacket.Payload("first, longer"))
	if err != nil {
		t.Fatal(err)
	}
	verify(t, a)
	b, err := Serialize(buf, ipv4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 1, DstPort: 2}, gopacket.Payload("second"))
	if err != nil {
		t.Fatal(err)
	}
	verify(t, b)
	if len(b) != 20+8+6 {
		t.Errorf("second packet %d bytes", len(b))
	}
}

// TestVerifyCatchesBadChecksums shows that the tests' checker fails
// packets whose checksums or lengths are wrong, so its silence means
// something.
func TestVerifyCatchesBadChecksums(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    *nfqueue.Packet
		off  int // byte to change, from the end when negative
	}{
		{"ipv4 header", udp4Packet(t, 9, "abc"), 8},
		{"udp payload", udp4Packet(t, 9, "abc"), -1},
		{"udp length", udp4Packet(t, 9, "abc"), 25},
		{"tcp payload", tcp6Packet(t, "abc"), -1},
		{"ipv6 payload length", tcp6Packet(t, "abc"), 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.p.Payload
			if len(problems(b)) != 0 {
				t.Fatalf("good packet fails: %v", problems(b))
			}
			i := tc.off
			if i < 0 {
				i += len(b)
			}
			b[i] ^= 0x10
			if len(problems(b)) == 0 {
				t.Error("corrupted packet passes")
			}
		})
	}
}
