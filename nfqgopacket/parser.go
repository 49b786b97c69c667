package nfqgopacket

import (
	"errors"
	"fmt"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/nfqueue-go/nfqueue"
)

// The transport layers always hand what follows them to the Payload layer,
// instead of to a port-chosen application decoder (DNS, TLS, ...) the
// Parser does not have, so Payload is the application payload.
type (
	tcpLayer   struct{ layers.TCP }
	udpLayer   struct{ layers.UDP }
	icmp6Layer struct{ layers.ICMPv6 }
)

func (*tcpLayer) NextLayerType() gopacket.LayerType   { return gopacket.LayerTypePayload }
func (*udpLayer) NextLayerType() gopacket.LayerType   { return gopacket.LayerTypePayload }
func (*icmp6Layer) NextLayerType() gopacket.LayerType { return gopacket.LayerTypePayload }

// Layer bits of Parser.has.
const (
	hasEthernet = 1 << iota
	hasIPv4
	hasIPv6
	hasTCP
	hasUDP
	hasICMPv4
	hasICMPv6
	hasPayload
)

// A Parser decodes packets into layers it owns, without allocating, with
// gopacket.DecodingLayerParser: Ethernet (a bridge-family packet's
// L2Header), IPv4, IPv6, TCP, UDP, ICMPv4, ICMPv6 and the application
// payload after the transport header. Decoding stops without error at the
// first layer it has no decoder for, such as an IPv4 or IPv6 fragment, an
// IPv6 routing header or a tunnel; the last decoded layer's LayerPayload
// holds the rest. (gopacket's IPv6 layer takes in a hop-by-hop header, in
// its HopByHop field, so what follows one decodes.)
//
// The layers returned by the accessors belong to the Parser and alias the
// packet's bytes: they are valid until the next Decode or Rewrite and, like
// Packet.Payload, until the handler returns. A Parser is not safe for
// concurrent use: give each goroutine its own (one per queue when serving
// an nfqueue.Set). Create it with NewParser.
type Parser struct {
	eth     layers.Ethernet
	ip4     layers.IPv4
	ip6     layers.IPv6
	tcp     tcpLayer
	udp     udpLayer
	icmp4   layers.ICMPv4
	icmp6   icmp6Layer
	payload gopacket.Payload

	// One DecodingLayerParser per first layer, all over the layers above.
	// The Ethernet one holds Ethernet alone: L2Header ends where Payload,
	// decoded by one of the others, begins.
	ethParser, ip4Parser, ip6Parser *gopacket.DecodingLayerParser

	l2, l3, decoded []gopacket.LayerType
	has             uint16
	truncated       bool

	buf gopacket.SerializeBuffer // for Rewrite
	app gopacket.Payload         // Rewrite's new application payload
}

// NewParser returns a Parser ready to decode.
func NewParser() *Parser {
	pr := &Parser{
		l2:      make([]gopacket.LayerType, 0, 4),
		l3:      make([]gopacket.LayerType, 0, 8),
		decoded: make([]gopacket.LayerType, 0, 12),
		buf:     gopacket.NewSerializeBuffer(),
	}
	l3 := []gopacket.DecodingLayer{&pr.ip4, &pr.ip6, &pr.tcp, &pr.udp, &pr.icmp4, &pr.icmp6, &pr.payload}
	pr.ethParser = newDLP(layers.LayerTypeEthernet, &pr.eth)
	pr.ip4Parser = newDLP(layers.LayerTypeIPv4, l3...)
	pr.ip6Parser = newDLP(layers.LayerTypeIPv6, l3...)
	return pr
}

func newDLP(first gopacket.LayerType, ls ...gopacket.DecodingLayer) *gopacket.DecodingLayerParser {
	dlp := gopacket.NewDecodingLayerParser(first)
	dlp.SetDecodingLayerContainer(gopacket.DecodingLayerSparse(nil))
	for _, l := range ls {
		dlp.AddDecodingLayer(l)
	}
	dlp.IgnoreUnsupported = true
	return dlp
}

// Decode decodes p and returns the types of the layers it decoded, in
// order; the slice belongs to the Parser and is reused by the next Decode.
// A bridge-family packet's L2Header decodes as Ethernet before Payload.
// The network layer is chosen as FirstLayer chooses it; a payload that is
// neither IPv4 nor IPv6 (ARP, say) yields no layers past Ethernet.
//
// The error is that of the first layer that failed to decode; the layers
// decoded before it are returned and valid. A truncated packet (see
// Truncated) usually decodes up to where its bytes end.
func (pr *Parser) Decode(p *nfqueue.Packet) ([]gopacket.LayerType, error) {
	pr.decoded, pr.has, pr.truncated = pr.decoded[:0], 0, p.Truncated()
	if hasL2(p) {
		err := pr.ethParser.DecodeLayers(p.L2Header, &pr.l2)
		pr.add(pr.l2, pr.ethParser)
		if err != nil {
			return pr.decoded, err
		}
	}
	var dlp *gopacket.DecodingLayerParser
	switch networkLayer(p) {
	case layers.LayerTypeIPv4:
		dlp = pr.ip4Parser
	case layers.LayerTypeIPv6:
		dlp = pr.ip6Parser
	default:
		return pr.decoded, nil
	}
	err := dlp.DecodeLayers(p.Payload, &pr.l3)
	pr.add(pr.l3, dlp)
	return pr.decoded, err
}

// add records the layers one DecodingLayerParser decoded.
func (pr *Parser) add(ts []gopacket.LayerType, dlp *gopacket.DecodingLayerParser) {
	pr.truncated = pr.truncated || dlp.Truncated
	pr.decoded = append(pr.decoded, ts...)
	for _, t := range ts {
		switch t {
		case layers.LayerTypeEthernet:
			pr.has |= hasEthernet
		case layers.LayerTypeIPv4:
			pr.has |= hasIPv4
		case layers.LayerTypeIPv6:
			pr.has |= hasIPv6
		case layers.LayerTypeTCP:
			pr.has |= hasTCP
		case layers.LayerTypeUDP:
			pr.has |= hasUDP
		case layers.LayerTypeICMPv4:
			pr.has |= hasICMPv4
		case layers.LayerTypeICMPv6:
			pr.has |= hasICMPv6
		case gopacket.LayerTypePayload:
			pr.has |= hasPayload
		}
	}
}

// Truncated reports whether the last packet decoded was cut short: the
// kernel truncated it to the copy range (Packet.Truncated), or a layer
// found fewer bytes than its header announced.
func (pr *Parser) Truncated() bool { return pr.truncated }

// Ethernet returns the Ethernet layer decoded from a bridge-family
// packet's L2Header, or nil.
func (pr *Parser) Ethernet() *layers.Ethernet {
	if pr.has&hasEthernet == 0 {
		return nil
	}
	return &pr.eth
}

// IPv4 returns the decoded IPv4 layer, or nil.
func (pr *Parser) IPv4() *layers.IPv4 {
	if pr.has&hasIPv4 == 0 {
		return nil
	}
	return &pr.ip4
}

// IPv6 returns the decoded IPv6 layer, or nil.
func (pr *Parser) IPv6() *layers.IPv6 {
	if pr.has&hasIPv6 == 0 {
		return nil
	}
	return &pr.ip6
}

// TCP returns the decoded TCP layer, or nil.
func (pr *Parser) TCP() *layers.TCP {
	if pr.has&hasTCP == 0 {
		return nil
	}
	return &pr.tcp.TCP
}

// UDP returns the decoded UDP layer, or nil.
func (pr *Parser) UDP() *layers.UDP {
	if pr.has&hasUDP == 0 {
		return nil
	}
	return &pr.udp.UDP
}

// ICMPv4 returns the decoded ICMPv4 layer, or nil.
func (pr *Parser) ICMPv4() *layers.ICMPv4 {
	if pr.has&hasICMPv4 == 0 {
		return nil
	}
	return &pr.icmp4
}

// ICMPv6 returns the decoded ICMPv6 layer, or nil. Its LayerPayload is the
// message body after the 4-byte ICMPv6 header (for an echo, identifier and
// sequence number first).
func (pr *Parser) ICMPv6() *layers.ICMPv6 {
	if pr.has&hasICMPv6 == 0 {
		return nil
	}
	return &pr.icmp6.ICMPv6
}

// Payload returns the application payload: the bytes after the TCP or UDP
// header, or after the ICMPv4 (8 bytes) or ICMPv6 (4 bytes) header. It is
// nil when there are none or no transport layer was decoded.
func (pr *Parser) Payload() []byte {
	if pr.has&hasPayload == 0 {
		return nil
	}
	return pr.payload
}

// Rewrite decodes p, calls edit with its application payload (see
// Payload; empty when the transport layer carries none) and returns
// nfqueue.Accept with the re-serialized packet as its replacement payload:
// network header, transport header and the payload edit returned, with
// lengths and checksums fixed (see Serialize).
//
// edit may change the payload in place and return it, or return another
// slice. It may also change header fields of the decoded layers through
// the Parser's accessors (addresses, ports, TTL, ...); they are
// serialized as changed. The network and transport layers must decode:
// IPv4 or IPv6 then TCP, UDP, ICMPv4 or ICMPv6; other packets, among them
// fragments and IPv6 packets with extension headers other than hop-by-hop,
// are refused with an error matching errors.ErrUnsupported, before edit
// runs. A packet that fails to decode is refused with the decoding error.
//
// A truncated packet is refused, before edit runs, with an error matching
// nfqueue.ErrInvalidVerdict. The Verdict is meaningful only when the error
// is nil. To give another verdict than Accept with the rewritten packet,
// take its payload: b, _ := v.Payload(); nfqueue.Stop.WithPayload(b).
//
// The verdict's payload lies in the Parser's buffer: it stays valid until
// the next Rewrite. Returning it from a Serve handler is safe (Serve sends
// a verdict with a payload before it reads on); a verdict given later
// with SetVerdict must be sent before the Parser rewrites again.
// In steady state Rewrite does not allocate.
func (pr *Parser) Rewrite(p *nfqueue.Packet, edit func(payload []byte) []byte) (nfqueue.Verdict, error) {
	if p.Truncated() {
		return nfqueue.Verdict{}, fmt.Errorf("nfqgopacket: rewrite packet %d: %w: truncated to %d of %d bytes",
			p.ID, nfqueue.ErrInvalidVerdict, len(p.Payload), p.CapLen)
	}
	if _, err := pr.Decode(p); err != nil {
		return nfqueue.Verdict{}, fmt.Errorf("nfqgopacket: rewrite packet %d: %w", p.ID, err)
	}
	var nl gopacket.SerializableLayer
	switch {
	case pr.has&hasIPv4 != 0:
		nl = &pr.ip4
	case pr.has&hasIPv6 != 0:
		nl = &pr.ip6
	}
	var tl gopacket.SerializableLayer
	var app []byte
	switch {
	case pr.has&hasTCP != 0:
		tl, app = &pr.tcp.TCP, pr.tcp.LayerPayload()
	case pr.has&hasUDP != 0:
		tl, app = &pr.udp.UDP, pr.udp.LayerPayload()
	case pr.has&hasICMPv4 != 0:
		tl, app = &pr.icmp4, pr.icmp4.LayerPayload()
	case pr.has&hasICMPv6 != 0:
		tl, app = &pr.icmp6.ICMPv6, pr.icmp6.LayerPayload()
	}
	if nl == nil || tl == nil {
		return nfqueue.Verdict{}, fmt.Errorf("nfqgopacket: rewrite packet %d: %w: no IP and transport layer to rewrite (decoded %v)",
			p.ID, errors.ErrUnsupported, pr.decoded)
	}
	pr.app = edit(app)
	b, err := Serialize(pr.buf, nl, tl, &pr.app)
	if err != nil {
		return nfqueue.Verdict{}, fmt.Errorf("nfqgopacket: rewrite packet %d: %w", p.ID, err)
	}
	if len(b) > nfqueue.MaxPayload {
		return nfqueue.Verdict{}, fmt.Errorf("nfqgopacket: rewrite packet %d: %w: %d bytes over %d",
			p.ID, nfqueue.ErrInvalidVerdict, len(b), nfqueue.MaxPayload)
	}
	return nfqueue.Accept.WithPayload(b), nil
}

// Rewrite is Parser.Rewrite with a Parser of its own: it allocates, and the
// verdict's payload is a new slice that stays valid, so it also suits a
// verdict given later with SetVerdict.
func Rewrite(p *nfqueue.Packet, edit func(payload []byte) []byte) (nfqueue.Verdict, error) {
	return NewParser().Rewrite(p, edit)
}
