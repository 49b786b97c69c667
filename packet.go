package nfqueue

import (
	"errors"
	"fmt"
	"net"
	"time"
	"unsafe"

	"github.com/nfqueue-go/nfqueue/internal/wire"
)

// Packet is one packet the kernel queued, with the metadata the kernel sent
// along. It is a struct of values: a field holds its zero value when the
// kernel did not send the attribute, and Has tells the two apart.
//
// Payload, HwAddr, SecCtx, Conntrack and L2Header alias the Conn's receive
// buffer. They are valid until the handler returns (Serve) or until the next
// ReadPacket; use Clone to keep a packet longer.
type Packet struct {
	ID         uint32 // packet id, unique per queue while queued (NFQA_PACKET_HDR)
	Queue      uint16 // queue number
	Family     Family // protocol family of the hook (nfgenmsg)
	HwProtocol uint16 // EtherType of the payload, e.g. 0x0800 for IPv4
	Hook       Hook   // netfilter hook the packet was queued from

	Mark          uint32    // skb mark (NFQA_MARK, sent only when not 0)
	Timestamp     time.Time // receive timestamp (NFQA_TIMESTAMP, input hooks only)
	InDev         uint32    // input interface index (NFQA_IFINDEX_INDEV)
	OutDev        uint32    // output interface index (NFQA_IFINDEX_OUTDEV)
	PhysInDev     uint32    // bridge port the packet came in on (NFQA_IFINDEX_PHYSINDEV)
	PhysOutDev    uint32    // bridge port the packet goes out on (NFQA_IFINDEX_PHYSOUTDEV)
	HwAddr        net.HardwareAddr
	Payload       []byte  // the packet from its network header, at most the copy range
	CapLen        uint32  // the packet's full length, sent only when Payload is truncated (NFQA_CAP_LEN)
	SkbInfo       SkbInfo // GSO and checksum state (NFQA_SKB_INFO)
	UID           uint32  // owner of the sending socket (NFQA_UID; needs Config.UIDGID)
	GID           uint32  // group of the sending socket (NFQA_GID; needs Config.UIDGID)
	SecCtx        []byte  // LSM security context (NFQA_SECCTX; needs Config.SecCtx)
	Conntrack     []byte  // conntrack entry as nested CTA_* attributes (NFQA_CT; needs Config.Conntrack); see DecodeConntrack
	CtInfo        CtInfo  // conntrack state of the packet (NFQA_CT_INFO)
	L2Header      []byte  // link-layer header, bridge family only (NFQA_L2HDR)
	VLAN          VLAN    // VLAN tag, bridge family only (NFQA_VLAN)
	Priority      uint32  // skb priority (NFQA_PRIORITY, sent only when not 0)
	CgroupClassID uint32  // net_cls classid of the sending socket (NFQA_CGROUP_CLASSID)

	// Present records which attributes the kernel sent.
	Present AttrSet

	attrs []byte // every attribute as received, for Attribute
}

// VLAN is an 802.1Q tag.
type VLAN struct {
	Proto uint16 // tag protocol identifier, e.g. 0x8100
	TCI   uint16 // tag control information: priority, DEI and VLAN id
}

// ID returns the VLAN id (the low 12 bits of the TCI).
func (v VLAN) ID() uint16 { return v.TCI & 0x0fff }

// Has reports whether the kernel sent attribute a with the packet.
func (p *Packet) Has(a Attr) bool { return p.Present.Has(a) }

// Truncated reports whether Payload holds less than the whole packet
// (the copy range was smaller, or the packet is larger than 65531 bytes).
// A truncated packet cannot be given a replacement payload.
func (p *Packet) Truncated() bool { return p.Has(AttrCapLen) && int(p.CapLen) > len(p.Payload) }

// OrigLen returns the packet's length on the wire: CapLen when the payload
// is truncated, otherwise len(Payload).
func (p *Packet) OrigLen() int {
	if p.Truncated() {
		return int(p.CapLen)
	}
	return len(p.Payload)
}

// Attribute returns the raw value of attribute typ as the kernel sent it,
// including attributes this package does not know. The value aliases the
// receive buffer like Payload.
func (p *Packet) Attribute(typ uint16) ([]byte, bool) {
	a := wire.NewAttrs(p.attrs)
	for a.Next() {
		if a.Type() == typ {
			return a.Data(), true
		}
	}
	return nil, false
}

// Clone returns a deep copy of p whose slices no longer alias the receive
// buffer. It allocates twice: the Packet and one buffer for all its bytes.
func (p *Packet) Clone() *Packet {
	q := new(Packet)
	*q = *p
	// A decoded packet's slices all lie within its attributes: copy those
	// and point into the copy. Slices set by hand are appended after.
	fields := [...]*[]byte{&q.Payload, (*[]byte)(&q.HwAddr), &q.SecCtx, &q.Conntrack, &q.L2Header}
	size := len(p.attrs)
	for _, f := range fields {
		if _, ok := offsetIn(p.attrs, *f); !ok {
			size += len(*f)
		}
	}
	if size == 0 {
		return q
	}
	buf := make([]byte, len(p.attrs), size)
	copy(buf, p.attrs)
	if p.attrs != nil {
		q.attrs = buf[:len(p.attrs):len(p.attrs)]
	}
	for _, f := range fields {
		s := *f
		if s == nil {
			continue
		}
		if off, ok := offsetIn(p.attrs, s); ok {
			*f = buf[off : off+len(s) : off+len(s)]
			continue
		}
		n := len(buf)
		buf = append(buf, s...)
		*f = buf[n:len(buf):len(buf)]
	}
	return q
}

// offsetIn returns where s starts within base, if it lies within it.
func offsetIn(base, s []byte) (int, bool) {
	if len(base) == 0 || s == nil {
		return 0, false
	}
	off := uintptr(unsafe.Pointer(unsafe.SliceData(s))) - uintptr(unsafe.Pointer(unsafe.SliceData(base)))
	if off > uintptr(len(base)) || uintptr(len(s)) > uintptr(len(base))-off {
		return 0, false
	}
	return int(off), true
}

// errMalformed is wrapped by every packet decoding error.
var errMalformed = errors.New("malformed packet message")

// unmarshal decodes the payload of an NFQNL_MSG_PACKET message (nfgenmsg and
// attributes) into p, overwriting all of p. It never allocates; slices alias b.
func (p *Packet) unmarshal(b []byte) error {
	*p = Packet{}
	g, attrs, err := wire.SplitGenMsg(b)
	if err != nil {
		return fmt.Errorf("%w: %v", errMalformed, err)
	}
	p.Family, p.Queue, p.attrs = Family(g.Family), g.ResID, attrs
	a := wire.NewAttrs(attrs)
	for a.Next() {
		t, d := a.Type(), a.Data()
		ok := true
		switch t {
		case wire.AttrPacketHdr:
			var hook uint8
			p.ID, p.HwProtocol, hook, ok = wire.PacketHdr(d)
			p.Hook = Hook(hook)
		case wire.AttrMark:
			p.Mark, ok = wire.BE32(d)
		case wire.AttrTimestamp:
			var sec, usec int64
			sec, usec, ok = wire.Timestamp(d)
			p.Timestamp = time.Unix(sec, usec*1000)
		case wire.AttrIfIndexIn:
			p.InDev, ok = wire.BE32(d)
		case wire.AttrIfIndexOut:
			p.OutDev, ok = wire.BE32(d)
		case wire.AttrIfIndexPhysIn:
			p.PhysInDev, ok = wire.BE32(d)
		case wire.AttrIfIndexPhysOut:
			p.PhysOutDev, ok = wire.BE32(d)
		case wire.AttrHwAddr:
			var hw []byte
			hw, ok = wire.HwAddr(d)
			p.HwAddr = hw
		case wire.AttrPayload:
			p.Payload = d
		case wire.AttrCT:
			p.Conntrack = d
		case wire.AttrCTInfo:
			var v uint32
			v, ok = wire.BE32(d)
			p.CtInfo = CtInfo(v)
		case wire.AttrCapLen:
			p.CapLen, ok = wire.BE32(d)
		case wire.AttrSkbInfo:
			var v uint32
			v, ok = wire.BE32(d)
			p.SkbInfo = SkbInfo(v)
		case wire.AttrUID:
			p.UID, ok = wire.BE32(d)
		case wire.AttrGID:
			p.GID, ok = wire.BE32(d)
		case wire.AttrSecCtx:
			p.SecCtx = trimNUL(d)
		case wire.AttrVLAN:
			p.VLAN.Proto, p.VLAN.TCI, ok = wire.VLAN(d)
		case wire.AttrL2Hdr:
			p.L2Header = d
		case wire.AttrPriority:
			p.Priority, ok = wire.BE32(d)
		case wire.AttrCgroupClassID:
			p.CgroupClassID, ok = wire.BE32(d)
		}
		if !ok {
			return fmt.Errorf("%w: attribute %v: %d bytes", errMalformed, Attr(t), len(d))
		}
		p.Present.Add(Attr(t))
	}
	if err := a.Err(); err != nil {
		return fmt.Errorf("%w: %v", errMalformed, err)
	}
	if !p.Has(AttrPacketHdr) {
		return fmt.Errorf("%w: no %v", errMalformed, AttrPacketHdr)
	}
	return nil
}

func trimNUL(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}
