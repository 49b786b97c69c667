package nfqgopacket

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/nfqueue-go/nfqueue"
)

var (
	tIPv4    = layers.LayerTypeIPv4
	tIPv6    = layers.LayerTypeIPv6
	tEth     = layers.LayerTypeEthernet
	tTCP     = layers.LayerTypeTCP
	tUDP     = layers.LayerTypeUDP
	tICMPv4  = layers.LayerTypeICMPv4
	tICMPv6  = layers.LayerTypeICMPv6
	tPayload = gopacket.LayerTypePayload
)

func decodeOK(t *testing.T, pr *Parser, p *nfqueue.Packet, want ...gopacket.LayerType) {
	t.Helper()
	got, err := pr.Decode(p)
	if err != nil {
		t.Fatalf("Decode: %v (decoded %v)", err, got)
	}
	if !equalTypes(got, want) {
		t.Fatalf("decoded %v, want %v", got, want)
	}
}

func TestParserIPv4UDP(t *testing.T) {
	pr := NewParser()
	// Port 53 would make gopacket go on to DNS; the Parser stops at the
	// application payload.
	p := udp4Packet(t, 53, "query")
	decodeOK(t, pr, p, tIPv4, tUDP, tPayload)
	if ip := pr.IPv4(); ip == nil || !ip.SrcIP.Equal(src4) || ip.TTL != 64 {
		t.Errorf("IPv4 %+v", ip)
	}
	if u := pr.UDP(); u == nil || u.DstPort != 53 || u.SrcPort != 40000 {
		t.Errorf("UDP %+v", u)
	}
	if string(pr.Payload()) != "query" || !within(pr.Payload(), p.Payload) {
		t.Errorf("payload %q (must alias the packet)", pr.Payload())
	}
	if pr.IPv6() != nil || pr.TCP() != nil || pr.ICMPv4() != nil || pr.ICMPv6() != nil || pr.Ethernet() != nil {
		t.Error("an accessor returns a layer that was not decoded")
	}
	if pr.Truncated() {
		t.Error("Truncated")
	}
}

func TestParserIPv6TCP(t *testing.T) {
	pr := NewParser()
	p := tcp6Packet(t, "GET / HTTP/1.0\r\n\r\n")
	decodeOK(t, pr, p, tIPv6, tTCP, tPayload)
	tcp := pr.TCP()
	if tcp == nil || tcp.DstPort != 8080 || tcp.Seq != 1000 || !tcp.PSH || len(tcp.Options) != len(tcpOptions) {
		t.Fatalf("TCP %+v", tcp)
	}
	if !pr.IPv6().DstIP.Equal(dst6) {
		t.Errorf("IPv6 dst %v", pr.IPv6().DstIP)
	}
	if !strings.HasPrefix(string(pr.Payload()), "GET /") {
		t.Errorf("payload %q", pr.Payload())
	}
	if pr.IPv4() != nil || pr.UDP() != nil {
		t.Error("layers of the previous packet are still reported")
	}

	// The same Parser, another packet: nothing of the first remains.
	decodeOK(t, pr, udp4Packet(t, 9, "x"), tIPv4, tUDP, tPayload)
	if pr.TCP() != nil || pr.IPv6() != nil {
		t.Error("layers of the previous packet are still reported")
	}
}

func TestParserICMP(t *testing.T) {
	pr := NewParser()
	b := build(t, ipv4(layers.IPProtocolICMPv4),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 7, Seq: 1},
		gopacket.Payload("ping"))
	decodeOK(t, pr, &nfqueue.Packet{Family: nfqueue.FamilyIPv4, Payload: b}, tIPv4, tICMPv4, tPayload)
	if ic := pr.ICMPv4(); ic.Id != 7 || ic.Seq != 1 || string(pr.Payload()) != "ping" {
		t.Errorf("ICMPv4 %+v payload %q", ic, pr.Payload())
	}

	b = build(t, ipv6(layers.IPProtocolICMPv6),
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)},
		gopacket.Payload("\x00\x07\x00\x01ping"))
	decodeOK(t, pr, &nfqueue.Packet{Family: nfqueue.FamilyIPv6, Payload: b}, tIPv6, tICMPv6, tPayload)
	if ic := pr.ICMPv6(); ic.TypeCode.Type() != layers.ICMPv6TypeEchoRequest || string(pr.Payload()) != "\x00\x07\x00\x01ping" {
		t.Errorf("ICMPv6 %v payload %q", ic.TypeCode, pr.Payload())
	}
}

func TestParserBridge(t *testing.T) {
	pr := NewParser()
	p := bridgePacket(t, "frame")
	decodeOK(t, pr, p, tEth, tIPv4, tUDP, tPayload)
	eth := pr.Ethernet()
	if eth == nil || !bytes.Equal(eth.SrcMAC, mac1) || !bytes.Equal(eth.DstMAC, mac2) || eth.EthernetType != layers.EthernetTypeIPv4 {
		t.Fatalf("Ethernet %+v", eth)
	}
	if !within(eth.SrcMAC, p.L2Header) {
		t.Error("Ethernet layer does not alias L2Header")
	}
	if string(pr.Payload()) != "frame" {
		t.Errorf("payload %q", pr.Payload())
	}

	// A VLAN tag left in the header: Ethernet decodes, the network layer
	// is still found by HwProtocol.
	tagged := append(append(append([]byte(nil), p.L2Header[:12]...), 0x81, 0x00, 0x00, 0x05), p.L2Header[12:]...)
	q := *p
	q.L2Header = tagged
	decodeOK(t, pr, &q, tEth, tIPv4, tUDP, tPayload)
	if pr.Ethernet().EthernetType != layers.EthernetTypeDot1Q {
		t.Errorf("EtherType %v", pr.Ethernet().EthernetType)
	}

	// ARP on a bridge: Ethernet, and nothing the Parser decodes after it.
	q = nfqueue.Packet{Family: nfqueue.FamilyBridge, HwProtocol: 0x0806, L2Header: p.L2Header, Payload: make([]byte, 28)}
	decodeOK(t, pr, &q, tEth)

	// No L2 header: decoding starts at the network header.
	q = *p
	q.L2Header = nil
	decodeOK(t, pr, &q, tIPv4, tUDP, tPayload)
}

func TestParserStopsAtUnsupported(t *testing.T) {
	pr := NewParser()

	frag := ipv4(layers.IPProtocolUDP)
	frag.Flags = layers.IPv4MoreFragments
	b := build(t, frag, gopacket.Payload("first fragment of a datagram"))
	decodeOK(t, pr, &nfqueue.Packet{Family: nfqueue.FamilyIPv4, Payload: b}, tIPv4)
	if string(pr.IPv4().LayerPayload()) != "first fragment of a datagram" {
		t.Errorf("fragment payload %q", pr.IPv4().LayerPayload())
	}

	// IPv6 with a fragment header (next header 44).
	b = build(t, ipv6(layers.IPProtocolIPv6Fragment), gopacket.Payload("\x11\x00\x00\x01\x00\x00\x00\x2a"+"first fragment"))
	decodeOK(t, pr, &nfqueue.Packet{Family: nfqueue.FamilyIPv6, Payload: b}, tIPv6)

	// gopacket's IPv6 layer takes in a hop-by-hop header, so the rest decodes.
	decodeOK(t, pr, &nfqueue.Packet{Family: nfqueue.FamilyIPv6, Payload: hopByHopPacket(t)}, tIPv6, tUDP, tPayload)
	if pr.IPv6().HopByHop == nil {
		t.Error("hop-by-hop header lost")
	}

	b = build(t, ipv4(layers.IPProtocolGRE), gopacket.Payload("\x00\x00\x08\x00"))
	decodeOK(t, pr, &nfqueue.Packet{Family: nfqueue.FamilyIPv4, Payload: b}, tIPv4)
}

func TestParserErrors(t *testing.T) {
	pr := NewParser()
	// The TCP header is cut short inside the IP packet.
	b := build(t, ipv4(layers.IPProtocolTCP), gopacket.Payload("0123456789"))
	got, err := pr.Decode(&nfqueue.Packet{Family: nfqueue.FamilyIPv4, Payload: b})
	if err == nil {
		t.Fatal("a 10-byte TCP header decoded")
	}
	if !equalTypes(got, []gopacket.LayerType{tIPv4}) || pr.IPv4() == nil || pr.TCP() != nil {
		t.Errorf("decoded %v before the error", got)
	}

	// Not IP at all in the ipv4 family.
	if _, err := pr.Decode(&nfqueue.Packet{Family: nfqueue.FamilyIPv4, Payload: []byte{1, 2, 3}}); err == nil {
		t.Error("garbage decoded as IPv4")
	}

	// A bridge packet whose L2 header is shorter than Ethernet's is
	// decoded from the network header.
	p := bridgePacket(t, "x")
	p.L2Header = p.L2Header[:10]
	decodeOK(t, pr, p, tIPv4, tUDP, tPayload)
}

func TestParserTruncated(t *testing.T) {
	pr := NewParser()
	p := tcp6Packet(t, strings.Repeat("payload ", 20))
	truncate(p, 40+40+16) // IPv6, TCP with options, 16 bytes of payload
	decodeOK(t, pr, p, tIPv6, tTCP, tPayload)
	if !pr.Truncated() || len(pr.Payload()) != 16 {
		t.Errorf("Truncated %v, payload %d bytes", pr.Truncated(), len(pr.Payload()))
	}

	// Cut inside the TCP header.
	p = tcp6Packet(t, "x")
	truncate(p, 40+10)
	if _, err := pr.Decode(p); err == nil || !pr.Truncated() {
		t.Errorf("Decode of a cut TCP header: %v, Truncated %v", err, pr.Truncated())
	}

	// Truncation seen only by the IP layer (no CapLen): the total length is
	// larger than the bytes.
	p = udp4Packet(t, 9, "0123456789")
	p.Payload = p.Payload[:len(p.Payload)-4]
	if _, err := pr.Decode(p); err != nil || !pr.Truncated() {
		t.Errorf("Decode of a short IPv4 packet: %v, Truncated %v", err, pr.Truncated())
	}
}

func TestParserZeroAllocs(t *testing.T) {
	pr := NewParser()
	for _, tc := range []struct {
		name string
		p    *nfqueue.Packet
		n    int
	}{
		{"ipv4 udp", udp4Packet(t, 53, "query"), 3},
		{"ipv6 tcp with options", tcp6Packet(t, "hello"), 3},
		{"bridge", bridgePacket(t, "frame"), 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			allocs := testing.AllocsPerRun(100, func() {
				ls, err := pr.Decode(tc.p)
				if err != nil || len(ls) != tc.n || pr.Payload() == nil {
					panic("decoding failed")
				}
			})
			if allocs != 0 {
				t.Errorf("Decode: %v allocs/op, want 0", allocs)
			}
		})
	}
}

func TestRewriteIPv4UDP(t *testing.T) {
	pr := NewParser()
	p := udp4Packet(t, 9, "hello")
	orig := append([]byte(nil), p.Payload...)
	v, err := pr.Rewrite(p, func(b []byte) []byte {
		if string(b) != "hello" {
			t.Errorf("edit got %q", b)
		}
		return []byte("hello, longer world")
	})
	if err != nil {
		t.Fatal(err)
	}
	if v.Kind() != nfqueue.KindAccept {
		t.Errorf("verdict %v", v)
	}
	b, ok := v.Payload()
	if !ok {
		t.Fatal("verdict has no payload")
	}
	verify(t, b)
	if len(b) != 20+8+len("hello, longer world") {
		t.Errorf("rewritten packet %d bytes", len(b))
	}
	pkt := gopacket.NewPacket(b, layers.LayerTypeIPv4, gopacket.Default)
	if string(pkt.ApplicationLayer().Payload()) != "hello, longer world" {
		t.Errorf("rewritten payload %q", pkt.ApplicationLayer().Payload())
	}
	ip := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if ip.Id != 0x1234 || ip.Flags != layers.IPv4DontFragment || ip.TTL != 64 || !ip.SrcIP.Equal(src4) {
		t.Errorf("IPv4 header not kept: %+v", ip)
	}
	if !bytes.Equal(p.Payload, orig) {
		t.Error("Rewrite changed the packet it read")
	}
}

func TestRewriteIPv6TCP(t *testing.T) {
	pr := NewParser()
	p := tcp6Packet(t, "GET /old HTTP/1.0\r\n\r\n")

	// Unchanged, the packet comes back byte for byte, options included.
	v, err := pr.Rewrite(p, func(b []byte) []byte { return b })
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := v.Payload(); !bytes.Equal(b, p.Payload) {
		t.Errorf("identity rewrite differs:\n got %x\nwant %x", b, p.Payload)
	}

	// Same length, edited in place.
	v, err = pr.Rewrite(p, func(b []byte) []byte {
		copy(b[5:8], "new")
		return b
	})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := v.Payload()
	verify(t, b)
	if !bytes.Contains(b, []byte("GET /new HTTP")) || len(b) != len(p.Payload) {
		t.Errorf("rewritten %q", b)
	}
	tcp := gopacket.NewPacket(b, layers.LayerTypeIPv6, gopacket.Default).Layer(layers.LayerTypeTCP).(*layers.TCP)
	if tcp.Seq != 1000 || tcp.Ack != 2000 || len(tcp.Options) != len(tcpOptions) {
		t.Errorf("TCP header not kept: %+v", tcp)
	}
}

func TestRewriteHeaders(t *testing.T) {
	// edit may change header fields through the accessors.
	pr := NewParser()
	p := udp4Packet(t, 9, "data")
	v, err := pr.Rewrite(p, func(b []byte) []byte {
		pr.IPv4().TTL = 3
		pr.IPv4().DstIP = []byte{10, 0, 0, 9}
		pr.UDP().DstPort = 10009
		return b
	})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := v.Payload()
	verify(t, b)
	pkt := gopacket.NewPacket(b, layers.LayerTypeIPv4, gopacket.Default)
	ip, udp := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4), pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if ip.TTL != 3 || ip.DstIP.String() != "10.0.0.9" || udp.DstPort != 10009 {
		t.Errorf("headers %v %v %v", ip.TTL, ip.DstIP, udp.DstPort)
	}
}

func TestRewriteICMP(t *testing.T) {
	pr := NewParser()
	b := build(t, ipv4(layers.IPProtocolICMPv4),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 7, Seq: 1},
		gopacket.Payload("ping"))
	v, err := pr.Rewrite(&nfqueue.Packet{Family: nfqueue.FamilyIPv4, Payload: b}, func([]byte) []byte { return []byte("pong!") })
	if err != nil {
		t.Fatal(err)
	}
	out, _ := v.Payload()
	verify(t, out)

	b = build(t, ipv6(layers.IPProtocolICMPv6),
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)},
		gopacket.Payload("\x00\x07\x00\x01ping"))
	v, err = pr.Rewrite(&nfqueue.Packet{Family: nfqueue.FamilyIPv6, Payload: b}, func(b []byte) []byte { return append(b, "!!"...) })
	if err != nil {
		t.Fatal(err)
	}
	out, _ = v.Payload()
	verify(t, out)
	if !bytes.HasSuffix(out, []byte("ping!!")) {
		t.Errorf("rewritten %q", out)
	}
}

func TestRewriteBridge(t *testing.T) {
	// The replacement starts at the network header: no Ethernet in it.
	pr := NewParser()
	p := bridgePacket(t, "frame")
	v, err := pr.Rewrite(p, func([]byte) []byte { return []byte("FRAME!") })
	if err != nil {
		t.Fatal(err)
	}
	b, _ := v.Payload()
	if b[0]>>4 != 4 {
		t.Fatalf("replacement starts with %#x, not an IPv4 header", b[0])
	}
	verify(t, b)
	if !bytes.HasSuffix(b, []byte("FRAME!")) {
		t.Errorf("rewritten %q", b)
	}
}

func TestRewriteRefusesTruncated(t *testing.T) {
	p := udp4Packet(t, 9, strings.Repeat("x", 100))
	truncate(p, 64)
	called := false
	_, err := NewParser().Rewrite(p, func(b []byte) []byte { called = true; return b })
	if !errors.Is(err, nfqueue.ErrInvalidVerdict) {
		t.Fatalf("err = %v, want ErrInvalidVerdict", err)
	}
	if called {
		t.Error("edit ran for a truncated packet")
	}
	t.Log(err)
}

func TestRewriteRefusesUnsupported(t *testing.T) {
	frag := ipv4(layers.IPProtocolUDP)
	frag.FragOffset = 100
	for name, p := range map[string]*nfqueue.Packet{
		"ipv4 fragment": {Family: nfqueue.FamilyIPv4, Payload: build(t, frag, gopacket.Payload("tail of a datagram"))},
		"ipv6 fragment": {Family: nfqueue.FamilyIPv6, Payload: build(t, ipv6(layers.IPProtocolIPv6Fragment), gopacket.Payload("\x11\x00\x00\x01\x00\x00\x00\x2afirst fragment"))},
		"gre":           {Family: nfqueue.FamilyIPv4, Payload: build(t, ipv4(layers.IPProtocolGRE), gopacket.Payload("\x00\x00\x08\x00"))},
		"arp":           {Family: nfqueue.FamilyBridge, HwProtocol: 0x0806, Payload: make([]byte, 28)},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewParser().Rewrite(p, func(b []byte) []byte { t.Error("edit ran"); return b })
			if !errors.Is(err, errors.ErrUnsupported) {
				t.Errorf("err = %v, want ErrUnsupported", err)
			}
		})
	}
	// A malformed packet: the decoding error.
	_, err := NewParser().Rewrite(&nfqueue.Packet{Family: nfqueue.FamilyIPv4, Payload: []byte{0x45, 0}}, func(b []byte) []byte { return b })
	if err == nil || errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("err = %v, want a decoding error", err)
	}
}

func TestRewriteTooLarge(t *testing.T) {
	p := udp4Packet(t, 9, "x")
	_, err := NewParser().Rewrite(p, func([]byte) []byte { return make([]byte, nfqueue.MaxPayload) })
	if !errors.Is(err, nfqueue.ErrInvalidVerdict) {
		t.Errorf("err = %v, want ErrInvalidVerdict", err)
	}
}

func TestRewriteBuffers(t *testing.T) {
	// Parser.Rewrite reuses its buffer; the package-level Rewrite does not.
	pr := NewParser()
	v1, _ := pr.Rewrite(udp4Packet(t, 9, "one"), func(b []byte) []byte { return b })
	b1, _ := v1.Payload()
	v2, _ := pr.Rewrite(udp4Packet(t, 9, "two"), func(b []byte) []byte { return b })
	b2, _ := v2.Payload()
	if &b1[0] != &b2[0] {
		t.Error("Parser.Rewrite did not reuse its buffer")
	}

	w1, err := Rewrite(udp4Packet(t, 9, "one"), func(b []byte) []byte { return b })
	if err != nil {
		t.Fatal(err)
	}
	w2, _ := Rewrite(udp4Packet(t, 9, "two"), func(b []byte) []byte { return b })
	c1, _ := w1.Payload()
	c2, _ := w2.Payload()
	if !bytes.HasSuffix(c1, []byte("one")) || !bytes.HasSuffix(c2, []byte("two")) {
		t.Errorf("package Rewrite payloads %q %q", c1, c2)
	}
	verify(t, c1)
}

func TestRewriteZeroAllocs(t *testing.T) {
	pr := NewParser()
	p4 := udp4Packet(t, 9, "hello")
	p6 := tcp6Packet(t, "hello")
	repl := []byte("HELLO, WORLD")
	edit := func([]byte) []byte { return repl }
	for name, p := range map[string]*nfqueue.Packet{"ipv4 udp": p4, "ipv6 tcp": p6} {
		if _, err := pr.Rewrite(p, edit); err != nil { // grow the buffer
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := pr.Rewrite(p, edit); err != nil {
				panic(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: Rewrite %v allocs/op, want 0", name, allocs)
		}
	}
}

func BenchmarkParserDecode(b *testing.B) {
	pr := NewParser()
	p := tcp6Packet(b, "GET / HTTP/1.0\r\n\r\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pr.Decode(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParserRewrite(b *testing.B) {
	pr := NewParser()
	p := tcp6Packet(b, "GET / HTTP/1.0\r\n\r\n")
	edit := func(b []byte) []byte { return b }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pr.Rewrite(p, edit); err != nil {
			b.Fatal(err)
		}
	}
}

// hopByHopPacket is an IPv6/UDP packet with a hop-by-hop header (router
// alert, then PadN to the 8-byte boundary).
func hopByHopPacket(t testing.TB) []byte {
	hbh := &layers.IPv6HopByHop{}
	hbh.NextHeader = layers.IPProtocolUDP
	hbh.Options = []*layers.IPv6HopByHopOption{
		{OptionType: 5, OptionLength: 2, OptionData: []byte{0, 0}},
		{OptionType: 1, OptionLength: 0, OptionData: []byte{}},
	}
	return build(t, ipv6(layers.IPProtocolIPv6HopByHop), hbh, &layers.UDP{SrcPort: 1, DstPort: 2}, gopacket.Payload("alert"))
}

func TestRewriteHopByHop(t *testing.T) {
	b := hopByHopPacket(t)
	verify(t, b)
	pr := NewParser()
	p := &nfqueue.Packet{Family: nfqueue.FamilyIPv6, Payload: b}
	v, err := pr.Rewrite(p, func(b []byte) []byte { return b })
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := v.Payload(); !bytes.Equal(out, b) {
		t.Errorf("identity rewrite differs:\n got %x\nwant %x", out, b)
	}
	v, err = pr.Rewrite(p, func([]byte) []byte { return []byte("a longer alert") })
	if err != nil {
		t.Fatal(err)
	}
	out, _ := v.Payload()
	verify(t, out)
	if out[6] != 0 || !bytes.HasSuffix(out, []byte("a longer alert")) {
		t.Errorf("rewritten %x", out)
	}
}
