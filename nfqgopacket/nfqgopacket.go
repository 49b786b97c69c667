package nfqgopacket

import (
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/nfqueue-go/nfqueue"
)

// ethHeaderLen is the length of an Ethernet header without VLAN tags.
const ethHeaderLen = 14

// FirstLayer returns the layer type Decode starts p at: Ethernet for a
// bridge-family packet that came with its link-layer header (L2Header),
// otherwise the type of the network header Payload starts with.
//
// The network header is IPv4 or IPv6 by p.Family; for other families (the
// bridge family among them) by p.HwProtocol, the packet's EtherType, which
// may also name ARP or another protocol gopacket knows; failing that by the
// IP version nibble. A payload it cannot place is gopacket.LayerTypePayload.
func FirstLayer(p *nfqueue.Packet) gopacket.LayerType {
	if hasL2(p) {
		return layers.LayerTypeEthernet
	}
	return networkLayer(p)
}

// hasL2 reports whether p carries an Ethernet header to decode.
func hasL2(p *nfqueue.Packet) bool {
	return p.Family == nfqueue.FamilyBridge && len(p.L2Header) >= ethHeaderLen
}

// networkLayer returns the layer type Payload starts with.
func networkLayer(p *nfqueue.Packet) gopacket.LayerType {
	switch p.Family {
	case nfqueue.FamilyIPv4:
		return layers.LayerTypeIPv4
	case nfqueue.FamilyIPv6:
		return layers.LayerTypeIPv6
	}
	if p.HwProtocol != 0 {
		if t := layers.EthernetType(p.HwProtocol).LayerType(); t != gopacket.LayerTypeZero {
			return t
		}
	}
	if len(p.Payload) > 0 {
		switch p.Payload[0] >> 4 {
		case 4:
			return layers.LayerTypeIPv4
		case 6:
			return layers.LayerTypeIPv6
		}
	}
	return gopacket.LayerTypePayload
}

// Decode decodes p with gopacket, starting at FirstLayer(p).
//
// For a bridge-family packet with an L2 header, the frame is L2Header and
// Payload joined in a new slice; a VLAN tag the kernel reports apart
// (p.VLAN) is not put back. Otherwise the packet decodes p.Payload; with
// opts.NoCopy the result and its layers alias the Conn's receive buffer and
// are valid only until the handler returns (or the next ReadPacket), like
// p.Payload. Without NoCopy, gopacket copies the bytes and the result may
// be kept.
//
// Checksums are not verified; a truncated packet (p.Truncated) decodes
// with gopacket's Truncated metadata set where a layer was cut short.
func Decode(p *nfqueue.Packet, opts gopacket.DecodeOptions) gopacket.Packet {
	data := p.Payload
	if hasL2(p) {
		data = make([]byte, 0, len(p.L2Header)+len(p.Payload))
		data = append(append(data, p.L2Header...), p.Payload...)
		opts.NoCopy = true // data is already a copy
	}
	return gopacket.NewPacket(data, FirstLayer(p), opts)
}

// serializeOpts fix lengths and checksums.
var serializeOpts = gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}

// checksummer is a layer whose checksum covers a network-layer
// pseudo-header: TCP, UDP, UDP-Lite, ICMPv6 and others.
type checksummer interface {
	SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
}

// Serialize serializes layers, outermost first, into buf with lengths and
// checksums fixed, and returns the bytes. Each layer with a pseudo-header
// checksum (TCP, UDP, ICMPv6, ...) has its checksum computed over the
// nearest network layer (IPv4 or IPv6) before it, so a typical call is
//
//	b, err := nfqgopacket.Serialize(nil, ip, tcp, gopacket.Payload(data))
//	v := nfqueue.Accept.WithPayload(b)
//
// For WithPayload, start at the network layer, never at Ethernet: the
// replacement payload begins at the network header in every family
// (a bridge packet's Ethernet header is replaced with WithL2Header).
//
// buf may be nil for a new buffer. The result aliases buf and is valid
// until buf is cleared or serialized into again. Serialize changes the
// layers' length, checksum and (for TCP) padding fields as
// gopacket.SerializeLayers does with FixLengths and ComputeChecksums.
func Serialize(buf gopacket.SerializeBuffer, layers ...gopacket.SerializableLayer) ([]byte, error) {
	if buf == nil {
		buf = gopacket.NewSerializeBuffer()
	}
	var nl gopacket.NetworkLayer
	for _, l := range layers {
		if c, ok := l.(checksummer); ok && nl != nil {
			if err := c.SetNetworkLayerForChecksum(nl); err != nil {
				return nil, err
			}
		}
		if n, ok := l.(gopacket.NetworkLayer); ok {
			nl = n
		}
	}
	if err := gopacket.SerializeLayers(buf, serializeOpts, layers...); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
