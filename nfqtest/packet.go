package nfqtest

import (
	"encoding/binary"
	"net/netip"
	"syscall"

	"github.com/nfqueue-go/nfqueue"
	"github.com/nfqueue-go/nfqueue/internal/wire"
)

// EtherTypes of the payloads, as the kernel puts them in the packet header.
const (
	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd
	ipProtoUDP    = 17
)

// appendPacket appends the PACKET message that delivers p with id to a
// queue configured as cfg, with the attributes in the kernel's order.
func appendPacket(b []byte, p *nfqueue.Packet, id uint32, cfg *QueueConfig) []byte {
	has := func(a nfqueue.Attr, nonzero bool) bool { return nonzero || p.Present.Has(a) }
	family, hwProto := p.Family, p.HwProtocol
	v6 := len(p.Payload) > 0 && p.Payload[0]>>4 == 6
	if family == 0 {
		family = nfqueue.FamilyIPv4
		if v6 {
			family = nfqueue.FamilyIPv6
		}
	}
	if hwProto == 0 {
		hwProto = etherTypeIPv4
		if v6 {
			hwProto = etherTypeIPv6
		}
	}

	b, start := wire.AppendHeader(b, wire.QueueType(wire.MsgPacket), 0, 0, uint8(family), cfg.Queue)
	// struct nfqnl_msg_packet_hdr { __be32 packet_id; __be16 hw_protocol; __u8 hook; } packed
	var hdr [7]byte
	binary.BigEndian.PutUint32(hdr[0:4], id)
	binary.BigEndian.PutUint16(hdr[4:6], hwProto)
	hdr[6] = uint8(p.Hook)
	b = wire.AppendAttr(b, wire.AttrPacketHdr, hdr[:])
	if has(nfqueue.AttrPriority, p.Priority != 0) {
		b = wire.AppendBE32(b, wire.AttrPriority, p.Priority)
	}
	if has(nfqueue.AttrInDev, p.InDev != 0) {
		b = wire.AppendBE32(b, wire.AttrIfIndexIn, p.InDev)
	}
	if has(nfqueue.AttrPhysInDev, p.PhysInDev != 0) {
		b = wire.AppendBE32(b, wire.AttrIfIndexPhysIn, p.PhysInDev)
	}
	if has(nfqueue.AttrOutDev, p.OutDev != 0) {
		b = wire.AppendBE32(b, wire.AttrIfIndexOut, p.OutDev)
	}
	if has(nfqueue.AttrPhysOutDev, p.PhysOutDev != 0) {
		b = wire.AppendBE32(b, wire.AttrIfIndexPhysOut, p.PhysOutDev)
	}
	if has(nfqueue.AttrMark, p.Mark != 0) {
		b = wire.AppendBE32(b, wire.AttrMark, p.Mark)
	}
	if has(nfqueue.AttrHwAddr, len(p.HwAddr) > 0) {
		// struct nfqnl_msg_packet_hw { __be16 hw_addrlen; __u16 _pad; __u8 hw_addr[8]; }
		var hw [12]byte
		n := copy(hw[4:], p.HwAddr)
		binary.BigEndian.PutUint16(hw[0:2], uint16(n))
		b = wire.AppendAttr(b, wire.AttrHwAddr, hw[:])
	}
	if has(nfqueue.AttrL2Header, p.L2Header != nil) {
		b = wire.AppendAttr(b, wire.AttrL2Hdr, p.L2Header)
	}
	if has(nfqueue.AttrVLAN, p.VLAN != (nfqueue.VLAN{})) {
		var n int
		b, n = wire.BeginNest(b, wire.AttrVLAN)
		b = wire.AppendBE16(b, wire.VLANAttrProto, p.VLAN.Proto)
		b = wire.AppendBE16(b, wire.VLANAttrTCI, p.VLAN.TCI)
		b = wire.EndNest(b, n)
	}
	if has(nfqueue.AttrTimestamp, !p.Timestamp.IsZero()) {
		// struct nfqnl_msg_packet_timestamp { __aligned_be64 sec; __aligned_be64 usec; }
		var ts [16]byte
		binary.BigEndian.PutUint64(ts[0:8], uint64(p.Timestamp.Unix()))
		binary.BigEndian.PutUint64(ts[8:16], uint64(p.Timestamp.Nanosecond()/1000))
		b = wire.AppendAttr(b, wire.AttrTimestamp, ts[:])
	}
	if cfg.UIDGID {
		if has(nfqueue.AttrUID, p.UID != 0) {
			b = wire.AppendBE32(b, wire.AttrUID, p.UID)
		}
		if has(nfqueue.AttrGID, p.GID != 0) {
			b = wire.AppendBE32(b, wire.AttrGID, p.GID)
		}
	}
	if cfg.SecCtx && has(nfqueue.AttrSecCtx, p.SecCtx != nil) {
		b = wire.AppendAttr(b, wire.AttrSecCtx, p.SecCtx)
	}
	if has(nfqueue.AttrCgroupClassID, p.CgroupClassID != 0) {
		b = wire.AppendBE32(b, wire.AttrCgroupClassID, p.CgroupClassID)
	}
	if cfg.Conntrack {
		if has(nfqueue.AttrConntrack, p.Conntrack != nil) {
			var n int
			b, n = wire.BeginNest(b, wire.AttrCT)
			b = append(b, p.Conntrack...)
			b = wire.EndNest(b, n)
			b = wire.AppendBE32(b, wire.AttrCTInfo, uint32(p.CtInfo))
		} else if p.Present.Has(nfqueue.AttrCtInfo) {
			b = wire.AppendBE32(b, wire.AttrCTInfo, uint32(p.CtInfo))
		}
	}

	// Only a copied packet has a copy length: CopyMeta sends neither the
	// payload nor its length.
	var data []byte
	if cfg.CopyMode == nfqueue.CopyPacket {
		data = p.Payload
		if uint32(len(data)) > cfg.CopyRange {
			data = data[:cfg.CopyRange]
		}
		capLen := p.CapLen
		if len(data) < len(p.Payload) && capLen < uint32(len(p.Payload)) {
			capLen = uint32(len(p.Payload))
		}
		if capLen > uint32(len(data)) {
			b = wire.AppendBE32(b, wire.AttrCapLen, capLen)
		}
	}
	if has(nfqueue.AttrSkbInfo, p.SkbInfo != 0) {
		b = wire.AppendBE32(b, wire.AttrSkbInfo, uint32(p.SkbInfo))
	}
	if cfg.CopyMode == nfqueue.CopyPacket && p.Payload != nil {
		b = wire.AppendAttr(b, wire.AttrPayload, data)
	}
	return wire.Finish(b, start)
}

// appendError appends the NLMSG_ERROR the kernel sends for request m:
// with errno 0 an acknowledgement holding the request's header only
// (NLM_F_CAPPED), otherwise the error with the whole request echoed.
func appendError(b []byte, m *wire.Message, errno syscall.Errno) []byte {
	var flags uint16
	if errno == 0 {
		flags = wire.FlagCapped
	}
	start := len(b)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = binary.NativeEndian.AppendUint16(b, wire.NLMsgError)
	b = binary.NativeEndian.AppendUint16(b, flags)
	b = binary.NativeEndian.AppendUint32(b, m.Header.Seq)
	b = binary.NativeEndian.AppendUint32(b, m.Header.PID)
	b = binary.NativeEndian.AppendUint32(b, uint32(-int32(errno)))
	// The request's header, with its original length.
	b = binary.NativeEndian.AppendUint32(b, m.Header.Len)
	b = binary.NativeEndian.AppendUint16(b, m.Header.Type)
	b = binary.NativeEndian.AppendUint16(b, m.Header.Flags)
	b = binary.NativeEndian.AppendUint32(b, m.Header.Seq)
	b = binary.NativeEndian.AppendUint32(b, m.Header.PID)
	if errno != 0 {
		b = append(b, m.Payload...)
	}
	return wire.Finish(b, start)
}

// UDP returns an IPv4 or IPv6 packet, from the IP header on, that carries
// payload in a UDP datagram from src to dst, with correct lengths and
// checksums: what Inject or InjectBytes take. src and dst must both be
// IPv4 or both IPv6 addresses; otherwise UDP panics.
func UDP(src, dst netip.AddrPort, payload []byte) []byte {
	s, d := src.Addr().Unmap(), dst.Addr().Unmap()
	if s.Is4() != d.Is4() || !s.IsValid() || !d.IsValid() {
		panic("nfqtest.UDP: " + src.String() + " and " + dst.String() + " are not of one IP version")
	}
	udpLen := 8 + len(payload)
	var b []byte
	if s.Is4() {
		b = make([]byte, 20, 20+udpLen)
		b[0] = 0x45 // version 4, 5-word header
		binary.BigEndian.PutUint16(b[2:4], uint16(20+udpLen))
		binary.BigEndian.PutUint16(b[6:8], 0x4000) // don't fragment
		b[8] = 64                                  // TTL
		b[9] = ipProtoUDP
		s4, d4 := s.As4(), d.As4()
		copy(b[12:16], s4[:])
		copy(b[16:20], d4[:])
		binary.BigEndian.PutUint16(b[10:12], ^fold(sum(0, b)))
	} else {
		b = make([]byte, 40, 40+udpLen)
		b[0] = 0x60 // version 6
		binary.BigEndian.PutUint16(b[4:6], uint16(udpLen))
		b[6] = ipProtoUDP
		b[7] = 64 // hop limit
		s16, d16 := s.As16(), d.As16()
		copy(b[8:24], s16[:])
		copy(b[24:40], d16[:])
	}
	ip := len(b)
	b = binary.BigEndian.AppendUint16(b, src.Port())
	b = binary.BigEndian.AppendUint16(b, dst.Port())
	b = binary.BigEndian.AppendUint16(b, uint16(udpLen))
	b = binary.BigEndian.AppendUint16(b, 0)
	b = append(b, payload...)

	// The checksum covers a pseudo-header of the addresses, protocol and
	// length, then the datagram; 0 is sent as all ones.
	var acc uint32
	if s.Is4() {
		acc = sum(acc, b[12:20])
	} else {
		acc = sum(acc, b[8:40])
	}
	acc += ipProtoUDP + uint32(udpLen)
	acc = sum(acc, b[ip:])
	c := ^fold(acc)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(b[ip+6:ip+8], c)
	return b
}

// sum adds b to a ones' complement sum as big-endian 16-bit words.
func sum(acc uint32, b []byte) uint32 {
	for len(b) >= 2 {
		acc += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	return acc
}

// fold folds a ones' complement sum to 16 bits.
func fold(acc uint32) uint16 {
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return uint16(acc)
}
