package nfqgopacket

import (
	"encoding/binary"
	"fmt"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/nfqueue-go/nfqueue"
)

var (
	src4 = net.IP{192, 0, 2, 1}
	dst4 = net.IP{198, 51, 100, 7}
	src6 = net.ParseIP("2001:db8::1")
	dst6 = net.ParseIP("2001:db8::2")
	mac1 = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	mac2 = net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
)

// build serializes ls with lengths and checksums fixed, as a sender would.
func build(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	b, err := Serialize(nil, ls...)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), b...)
}

func ipv4(proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, TTL: 64, Id: 0x1234, Flags: layers.IPv4DontFragment, Protocol: proto, SrcIP: src4, DstIP: dst4}
}

func ipv6(next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, FlowLabel: 0x12345, NextHeader: next, SrcIP: src6, DstIP: dst6}
}

// udp4Packet is a queued IPv4/UDP packet as the ipv4 family hands it out.
func udp4Packet(t testing.TB, dport layers.UDPPort, payload string) *nfqueue.Packet {
	b := build(t, ipv4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 40000, DstPort: dport}, gopacket.Payload(payload))
	return &nfqueue.Packet{ID: 1, Family: nfqueue.FamilyIPv4, HwProtocol: 0x0800, Payload: b}
}

// tcpOptions are those of a typical SYN: MSS, SACK permitted, timestamps,
// NOP and window scale (5 options, 20 bytes).
var tcpOptions = []layers.TCPOption{
	{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}},
	{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
	{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: []byte{0, 0, 0, 1, 0, 0, 0, 0}},
	{OptionType: layers.TCPOptionKindNop, OptionLength: 1},
	{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}},
}

// tcp6Packet is a queued IPv6/TCP packet with options and a payload.
func tcp6Packet(t testing.TB, payload string) *nfqueue.Packet {
	tcp := &layers.TCP{SrcPort: 50000, DstPort: 8080, Seq: 1000, Ack: 2000, PSH: true, ACK: true, Window: 512, Options: tcpOptions}
	b := build(t, ipv6(layers.IPProtocolTCP), tcp, gopacket.Payload(payload))
	return &nfqueue.Packet{ID: 2, Family: nfqueue.FamilyIPv6, HwProtocol: 0x86dd, Payload: b}
}

// bridgePacket is an IPv4/UDP frame as the bridge family hands it out: the
// Ethernet header in L2Header, the rest, from the IP header, in Payload.
func bridgePacket(t testing.TB, payload string) *nfqueue.Packet {
	eth := &layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: layers.EthernetTypeIPv4}
	frame := build(t, eth, ipv4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 40000, DstPort: 9}, gopacket.Payload(payload))
	return &nfqueue.Packet{ID: 3, Family: nfqueue.FamilyBridge, HwProtocol: 0x0800, L2Header: frame[:14], Payload: frame[14:]}
}

// verify fails t unless b, a packet from its network header, decodes
// with gopacket and every length and checksum in it is right.
func verify(t testing.TB, b []byte) {
	t.Helper()
	for _, p := range problems(b) {
		t.Error(p)
	}
}

// problems decodes b with gopacket and lists its checksum and length
// errors. It verifies with gopacket, and also recomputes the IP header and
// transport checksums by hand, so the tests do not rest on gopacket
// checking its own arithmetic.
func problems(b []byte) []string {
	var out []string
	bad := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if len(b) < 20 {
		return []string{"short packet"}
	}
	first := gopacket.LayerType(layers.LayerTypeIPv4)
	if b[0]>>4 == 6 {
		first = layers.LayerTypeIPv6
	}
	pkt := gopacket.NewPacket(b, first, gopacket.Default)
	if el := pkt.ErrorLayer(); el != nil {
		return []string{fmt.Sprintf("decoding: %v", el.Error())}
	}
	// Decoded transport layers do not know their network layer: point
	// them at it, as Serialize does, or gopacket cannot verify them.
	var nl gopacket.NetworkLayer
	for _, l := range pkt.Layers() {
		if c, ok := l.(checksummer); ok && nl != nil {
			if err := c.SetNetworkLayerForChecksum(nl); err != nil {
				return []string{err.Error()}
			}
		}
		if n, ok := l.(gopacket.NetworkLayer); ok {
			nl = n
		}
	}
	err, mismatches := pkt.VerifyChecksums()
	if err != nil {
		return []string{err.Error()}
	}
	for _, m := range mismatches {
		bad("gopacket: checksum mismatch in %v: %+v", m.Layer.LayerType(), m.ChecksumVerificationResult)
	}

	var pseudo, l4 []byte
	var proto byte
	switch first {
	case layers.LayerTypeIPv4:
		ihl := int(b[0]&0x0f) * 4
		if n := int(binary.BigEndian.Uint16(b[2:4])); n != len(b) {
			bad("IPv4 total length %d, packet %d bytes", n, len(b))
		}
		if sum := checksum(nil, b[:ihl]); sum != 0 {
			bad("IPv4 header checksum does not verify (%#04x)", sum)
		}
		proto, l4 = b[9], b[ihl:]
		pseudo = append(append([]byte(nil), b[12:20]...), 0, proto, byte(len(l4)>>8), byte(len(l4)))
	case layers.LayerTypeIPv6:
		if n := int(binary.BigEndian.Uint16(b[4:6])); n != len(b)-40 {
			bad("IPv6 payload length %d, packet %d bytes", n, len(b))
		}
		proto, l4 = b[6], b[40:]
		pseudo = append(append([]byte(nil), b[8:40]...), 0, 0, byte(len(l4)>>8), byte(len(l4)), 0, 0, 0, proto)
	}
	switch layers.IPProtocol(proto) {
	case layers.IPProtocolTCP, layers.IPProtocolUDP, layers.IPProtocolICMPv6:
		if layers.IPProtocol(proto) == layers.IPProtocolUDP {
			if n := int(binary.BigEndian.Uint16(l4[4:6])); n != len(l4) {
				bad("UDP length %d, datagram %d bytes", n, len(l4))
			}
		}
		if sum := checksum(pseudo, l4); sum != 0 {
			bad("%v checksum does not verify (%#04x)", layers.IPProtocol(proto), sum)
		}
	case layers.IPProtocolICMPv4:
		if sum := checksum(nil, l4); sum != 0 {
			bad("ICMPv4 checksum does not verify (%#04x)", sum)
		}
	}
	return out
}

// checksum is the RFC 1071 Internet checksum of a then b; over data that
// includes a correct checksum field it is 0.
func checksum(a, b []byte) uint16 {
	var sum uint32
	data := append(append([]byte(nil), a...), b...)
	for i := 0; i+1 < len(data); i += 2 {
		sum += uint32(data[i])<<8 | uint32(data[i+1])
	}
	if len(data)%2 == 1 {
		sum += uint32(data[len(data)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// truncate makes p look as the kernel sends a packet cut to the copy
// range: Payload holds the first n bytes, CapLen the whole length.
func truncate(p *nfqueue.Packet, n int) {
	p.CapLen = uint32(len(p.Payload))
	p.Present |= 1 << nfqueue.AttrCapLen // AttrSet has no exported setter
	p.Payload = p.Payload[:n]
}
