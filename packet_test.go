package nfqueue

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/nfqueue-go/nfqueue/internal/wire"
)

// Fixtures live in internal/wire/testdata as annotated hex (see
// internal/wire/fixture_test.go for the format and where each set comes
// from): kernel/ holds PACKET messages and errors captured from Linux 6.18,
// golden/ our encoders' messages, checked there against libnetfilter_queue.

// fixtureBytes returns the bytes of an annotated hex fixture.
func fixtureBytes(t testing.TB, path string) []byte {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var data []byte
	for i, line := range strings.Split(string(src), "\n") {
		code, _, _ := strings.Cut(line, "#")
		code = strings.Join(strings.Fields(code), "")
		b, err := hex.DecodeString(code)
		if err != nil {
			t.Fatalf("%s:%d: %v", path, i+1, err)
		}
		data = append(data, b...)
	}
	return data
}

func kernelFixture(t testing.TB, name string) []byte {
	t.Helper()
	return fixtureBytes(t, filepath.Join("internal", "wire", "testdata", "kernel", name+".hex"))
}

func goldenFixture(t testing.TB, name string) []byte {
	t.Helper()
	return fixtureBytes(t, filepath.Join("internal", "wire", "testdata", "golden", name+".hex"))
}

// littleEndianOnly skips byte-exact tests on big-endian hosts: netlink
// headers are in host byte order and the fixtures were made on x86_64.
func littleEndianOnly(t testing.TB) {
	t.Helper()
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("fixtures hold little-endian netlink headers")
	}
}

// equalBytes fails t with a side-by-side hexdump, four bytes per line,
// when got != want.
func equalBytes(t testing.TB, name string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: got %d bytes, want %d\n  %-6s %-10s %s\n", name, len(got), len(want), "offset", "got", "want")
	for off := 0; off < max(len(got), len(want)); off += 4 {
		g, w := got[min(off, len(got)):min(off+4, len(got))], want[min(off, len(want)):min(off+4, len(want))]
		mark := " "
		if !bytes.Equal(g, w) {
			mark = "!"
		}
		fmt.Fprintf(&b, "%s %06x %-10x %x\n", mark, off, g, w)
	}
	t.Error(b.String())
}

// kernelMessage returns the payload of the one message in a captured
// datagram: what Conn hands to Packet.unmarshal.
func kernelMessage(t testing.TB, dgram []byte) []byte {
	t.Helper()
	var it wire.Messages
	it.Reset(dgram)
	var m wire.Message
	if !it.Next(&m) {
		t.Fatalf("no message: %v", it.Err())
	}
	if typ, ok := m.IsQueue(); !ok || typ != wire.MsgPacket || it.Remaining() {
		t.Fatalf("not one PACKET message: type %#x", m.Header.Type)
	}
	return m.Payload
}

// Builders for hand-made PACKET payloads (nfgenmsg + attributes).

func packetPayload(family uint8, queue uint16, attrs ...[]byte) []byte {
	b := []byte{family, 0, byte(queue >> 8), byte(queue)}
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

func rawAttr(typ uint16, v ...byte) []byte { return wire.AppendAttr(nil, typ, v) }

// unpaddedAttr is an attribute without its trailing padding, as the kernel
// ends a message.
func unpaddedAttr(typ uint16, v ...byte) []byte {
	return append(binary.NativeEndian.AppendUint16(binary.NativeEndian.AppendUint16(nil, uint16(4+len(v))), typ), v...)
}

func be32Attr(typ uint16, v uint32) []byte { return wire.AppendBE32(nil, typ, v) }

func hdrAttr(id uint32, proto uint16, hook uint8) []byte {
	v := binary.BigEndian.AppendUint32(nil, id)
	v = binary.BigEndian.AppendUint16(v, proto)
	return rawAttr(wire.AttrPacketHdr, append(v, hook)...)
}

func nestAttr(typ uint16, attrs ...[]byte) []byte {
	b, n := wire.BeginNest(nil, typ)
	for _, a := range attrs {
		b = append(b, a...)
	}
	return wire.EndNest(b, n)
}

func presentSet(attrs ...Attr) AttrSet {
	var s AttrSet
	for _, a := range attrs {
		s.Add(a)
	}
	return s
}

// samePacket compares every field, Timestamp by time.Time.Equal and slices
// by content (nil and empty alike), not the raw attributes.
func samePacket(t *testing.T, got, want *Packet) {
	t.Helper()
	g, w := *got, *want
	if !g.Timestamp.Equal(w.Timestamp) {
		t.Errorf("Timestamp %v, want %v", g.Timestamp, w.Timestamp)
	}
	g.Timestamp, w.Timestamp = time.Time{}, time.Time{}
	g.attrs, w.attrs = nil, nil
	norm := func(p *Packet) {
		for _, s := range []*[]byte{&p.Payload, &p.SecCtx, &p.Conntrack, &p.L2Header, (*[]byte)(&p.HwAddr)} {
			if len(*s) == 0 {
				*s = nil
			}
		}
	}
	norm(&g)
	norm(&w)
	if !reflect.DeepEqual(g, w) {
		t.Errorf("decoded\n got  %+v\n want %+v", g, w)
	}
}

// TestPacketAttributes decodes every attribute the kernel sends, each in a
// message of its own next to the mandatory packet header.
func TestPacketAttributes(t *testing.T) {
	base := Packet{ID: 0x01020304, Queue: 0x0102, Family: FamilyIPv4, HwProtocol: 0x0800, Hook: HookOutput}
	hdr := hdrAttr(0x01020304, 0x0800, 3)
	with := func(f func(p *Packet), attrs ...Attr) Packet {
		p := base
		f(&p)
		p.Present = presentSet(append(attrs, AttrPacketHdr)...)
		return p
	}
	ipPacket := []byte{0x45, 0, 0, 21, 0, 0, 0x40, 0, 0x40, 0x11, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1, 0xaa}
	vlan := nestAttr(wire.AttrVLAN, wire.AppendBE16(nil, wire.VLANAttrProto, 0x8100), wire.AppendBE16(nil, wire.VLANAttrTCI, 0xa07b))
	ct := nestAttr(wire.AttrCT, be32Attr(wire.CTAMark, 0x2a), be32Attr(12, 0xdead)) // CTA_MARK, CTA_ID
	tests := []struct {
		name  string
		attrs [][]byte
		want  Packet
	}{
		{"packet header only", nil, with(func(*Packet) {})},
		{"mark", [][]byte{be32Attr(wire.AttrMark, 0xfeedf00d)}, with(func(p *Packet) { p.Mark = 0xfeedf00d }, AttrMark)},
		{"timestamp", [][]byte{rawAttr(wire.AttrTimestamp, 0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x00, 0, 0, 0, 0, 0, 0x0f, 0x42, 0x3f)},
			with(func(p *Packet) { p.Timestamp = time.Unix(0x6553f100, 999999000) }, AttrTimestamp)},
		{"indev", [][]byte{be32Attr(wire.AttrIfIndexIn, 7)}, with(func(p *Packet) { p.InDev = 7 }, AttrInDev)},
		{"outdev", [][]byte{be32Attr(wire.AttrIfIndexOut, 0x10000)}, with(func(p *Packet) { p.OutDev = 0x10000 }, AttrOutDev)},
		{"physindev", [][]byte{be32Attr(wire.AttrIfIndexPhysIn, 3)}, with(func(p *Packet) { p.PhysInDev = 3 }, AttrPhysInDev)},
		{"physoutdev", [][]byte{be32Attr(wire.AttrIfIndexPhysOut, 4)}, with(func(p *Packet) { p.PhysOutDev = 4 }, AttrPhysOutDev)},
		{"hwaddr", [][]byte{rawAttr(wire.AttrHwAddr, 0, 6, 0, 0, 0x02, 0x42, 0xac, 0x11, 0, 2, 0, 0)},
			with(func(p *Packet) { p.HwAddr = net.HardwareAddr{0x02, 0x42, 0xac, 0x11, 0, 2} }, AttrHwAddr)},
		{"hwaddr of 8 bytes", [][]byte{rawAttr(wire.AttrHwAddr, 0, 8, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8)},
			with(func(p *Packet) { p.HwAddr = net.HardwareAddr{1, 2, 3, 4, 5, 6, 7, 8} }, AttrHwAddr)},
		{"payload", [][]byte{rawAttr(wire.AttrPayload, ipPacket...)}, with(func(p *Packet) { p.Payload = ipPacket }, AttrPayload)},
		{"empty payload", [][]byte{rawAttr(wire.AttrPayload)}, with(func(p *Packet) { p.Payload = []byte{} }, AttrPayload)},
		{"ct", [][]byte{ct}, with(func(p *Packet) { p.Conntrack = ct[4:] }, AttrConntrack)},
		{"ct-info", [][]byte{be32Attr(wire.AttrCTInfo, uint32(CtEstablishedReply))}, with(func(p *Packet) { p.CtInfo = CtEstablishedReply }, AttrCtInfo)},
		{"cap-len", [][]byte{be32Attr(wire.AttrCapLen, 1500), rawAttr(wire.AttrPayload, ipPacket...)},
			with(func(p *Packet) { p.CapLen, p.Payload = 1500, ipPacket }, AttrCapLen, AttrPayload)},
		{"skb-info", [][]byte{be32Attr(wire.AttrSkbInfo, wire.SkbGSO|wire.SkbCsumNotVerified)},
			with(func(p *Packet) { p.SkbInfo = SkbGSO | SkbCsumNotVerified }, AttrSkbInfo)},
		{"exp is kept, not decoded", [][]byte{nestAttr(wire.AttrExp, be32Attr(1, 1))}, with(func(*Packet) {}, AttrExp)},
		{"uid and gid", [][]byte{be32Attr(wire.AttrUID, 1000), be32Attr(wire.AttrGID, 0xfffffffe)},
			with(func(p *Packet) { p.UID, p.GID = 1000, 0xfffffffe }, AttrUID, AttrGID)},
		{"uid 0", [][]byte{be32Attr(wire.AttrUID, 0)}, with(func(*Packet) {}, AttrUID)},
		{"secctx without its NUL", [][]byte{rawAttr(wire.AttrSecCtx, []byte("system_u:object_r:unlabeled_t:s0\x00")...)},
			with(func(p *Packet) { p.SecCtx = []byte("system_u:object_r:unlabeled_t:s0") }, AttrSecCtx)},
		{"secctx without a NUL", [][]byte{rawAttr(wire.AttrSecCtx, 'a', 'b')}, with(func(p *Packet) { p.SecCtx = []byte("ab") }, AttrSecCtx)},
		{"vlan", [][]byte{vlan}, with(func(p *Packet) { p.VLAN = VLAN{Proto: 0x8100, TCI: 0xa07b} }, AttrVLAN)},
		{"l2hdr", [][]byte{rawAttr(wire.AttrL2Hdr, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x81, 0)},
			with(func(p *Packet) { p.L2Header = []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x81, 0} }, AttrL2Header)},
		{"priority", [][]byte{be32Attr(wire.AttrPriority, 6)}, with(func(p *Packet) { p.Priority = 6 }, AttrPriority)},
		{"cgroup classid", [][]byte{be32Attr(wire.AttrCgroupClassID, 0x100001)}, with(func(p *Packet) { p.CgroupClassID = 0x100001 }, AttrCgroupClassID)},
		{"unknown attribute kept", [][]byte{rawAttr(40, 1, 2, 3)}, with(func(*Packet) {}, 40)},
		{"unknown attribute above 63", [][]byte{rawAttr(0x3fff, 1)}, with(func(*Packet) {})},
		{"NLA_F_NESTED and NET_BYTEORDER masked", [][]byte{be32Attr(wire.AttrMark|wire.AttrNetOrder, 9), be32Attr(wire.AttrPriority|wire.AttrNested, 2)},
			with(func(p *Packet) { p.Mark, p.Priority = 9, 2 }, AttrMark, AttrPriority)},
		{"unpadded final attribute", [][]byte{unpaddedAttr(wire.AttrPayload, 1, 2, 3)}, with(func(p *Packet) { p.Payload = []byte{1, 2, 3} }, AttrPayload)},
		{"header last", [][]byte{be32Attr(wire.AttrMark, 1)}, with(func(p *Packet) { p.Mark = 1 }, AttrMark)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attrs := append([][]byte{hdr}, tt.attrs...)
			if tt.name == "header last" {
				attrs = append(tt.attrs, hdr)
			}
			b := packetPayload(wire.ProtoIPv4, 0x0102, attrs...)
			var p Packet
			p.Mark = 0xbad // unmarshal overwrites all of p
			if err := p.unmarshal(b); err != nil {
				t.Fatal(err)
			}
			samePacket(t, &p, &tt.want)
			// Every attribute is reachable raw, known or not.
			for _, a := range tt.attrs {
				typ := binary.NativeEndian.Uint16(a[2:4]) & wire.AttrTypeMask
				v, ok := p.Attribute(typ)
				want := a[4:binary.NativeEndian.Uint16(a[0:2])]
				if !ok || !bytes.Equal(v, want) {
					t.Errorf("Attribute(%d) = % x, %v; want % x", typ, v, ok, want)
				}
			}
		})
	}
}

func TestPacketAttributeLookup(t *testing.T) {
	b := packetPayload(wire.ProtoIPv6, 1, hdrAttr(5, 0x86dd, 1), rawAttr(200, 'x'), be32Attr(wire.AttrMark, 3), unpaddedAttr(77))
	var p Packet
	if err := p.unmarshal(b); err != nil {
		t.Fatal(err)
	}
	if v, ok := p.Attribute(200); !ok || string(v) != "x" {
		t.Errorf("Attribute(200) = %q, %v", v, ok)
	}
	if v, ok := p.Attribute(77); !ok || len(v) != 0 {
		t.Errorf("Attribute(77) = %q, %v", v, ok)
	}
	if v, ok := p.Attribute(wire.AttrPacketHdr); !ok || len(v) != 7 {
		t.Errorf("Attribute(PACKET_HDR) = % x, %v", v, ok)
	}
	for _, missing := range []uint16{0, wire.AttrPayload, 201, 0xffff} {
		if v, ok := p.Attribute(missing); ok || v != nil {
			t.Errorf("Attribute(%d) = % x, %v", missing, v, ok)
		}
	}
	if !p.Has(AttrMark) || p.Has(AttrPayload) || p.Has(200) || p.Has(77) {
		t.Errorf("Present = %v", p.Present)
	}
	var zero Packet
	if v, ok := zero.Attribute(wire.AttrPacketHdr); ok || v != nil {
		t.Error("zero Packet has attributes")
	}
}

// TestPacketMalformed: every malformed message is refused with an error
// matching ErrMalformed, and no input panics.
func TestPacketMalformed(t *testing.T) {
	hdr := hdrAttr(1, 0x0800, 0)
	short32 := func(typ uint16) []byte { return rawAttr(typ, 0, 0, 1) }
	tests := []struct {
		name string
		in   []byte
		what string // part of the error message
	}{
		{"empty", nil, "short"},
		{"short nfgenmsg", []byte{2, 0, 0}, "short"},
		{"no attributes", packetPayload(2, 0), "no packet-hdr"},
		{"missing packet header", packetPayload(2, 0, be32Attr(wire.AttrMark, 1)), "no packet-hdr"},
		{"packet header too short", packetPayload(2, 0, rawAttr(wire.AttrPacketHdr, 0, 0, 0, 1, 8, 0)), "packet-hdr: 6 bytes"},
		{"empty packet header", packetPayload(2, 0, rawAttr(wire.AttrPacketHdr)), "packet-hdr: 0 bytes"},
		{"short attribute header", append(packetPayload(2, 0, hdr), 8, 0), "short"},
		{"nla_len past the end", append(packetPayload(2, 0, hdr), 9, 0, 3, 0, 0, 0, 0, 1), "length"},
		{"nla_len below 4", append(packetPayload(2, 0, hdr), 3, 0, 3, 0), "length"},
		{"nla_len 0", append(packetPayload(2, 0, hdr), 0, 0, 3, 0), "length"},
		{"bad attribute before the header", packetPayload(2, 0, []byte{0xff, 0xff, 1, 0}, hdr), "length"},
		{"mark too short", packetPayload(2, 0, hdr, short32(wire.AttrMark)), "mark: 3 bytes"},
		{"timestamp too short", packetPayload(2, 0, hdr, rawAttr(wire.AttrTimestamp, make([]byte, 15)...)), "timestamp: 15 bytes"},
		{"indev too short", packetPayload(2, 0, hdr, short32(wire.AttrIfIndexIn)), "indev"},
		{"outdev empty", packetPayload(2, 0, hdr, rawAttr(wire.AttrIfIndexOut)), "outdev: 0 bytes"},
		{"physindev too short", packetPayload(2, 0, hdr, short32(wire.AttrIfIndexPhysIn)), "physindev"},
		{"physoutdev too short", packetPayload(2, 0, hdr, short32(wire.AttrIfIndexPhysOut)), "physoutdev"},
		{"hwaddr too short", packetPayload(2, 0, hdr, rawAttr(wire.AttrHwAddr, 0, 6, 0)), "hwaddr"},
		{"hwaddr length over the value", packetPayload(2, 0, hdr, rawAttr(wire.AttrHwAddr, 0, 6, 0, 0, 1, 2)), "hwaddr"},
		{"hwaddr length over 8", packetPayload(2, 0, hdr, rawAttr(wire.AttrHwAddr, 0, 9, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)), "hwaddr"},
		{"ct-info too short", packetPayload(2, 0, hdr, short32(wire.AttrCTInfo)), "ct-info"},
		{"cap-len too short", packetPayload(2, 0, hdr, short32(wire.AttrCapLen)), "cap-len"},
		{"skb-info too short", packetPayload(2, 0, hdr, short32(wire.AttrSkbInfo)), "skb-info"},
		{"uid too short", packetPayload(2, 0, hdr, short32(wire.AttrUID)), "uid"},
		{"gid too short", packetPayload(2, 0, hdr, short32(wire.AttrGID)), "gid"},
		{"vlan without tci", packetPayload(2, 0, hdr, nestAttr(wire.AttrVLAN, wire.AppendBE16(nil, wire.VLANAttrProto, 0x8100))), "vlan"},
		{"vlan with a short tci", packetPayload(2, 0, hdr, nestAttr(wire.AttrVLAN, wire.AppendBE16(nil, wire.VLANAttrProto, 0x8100), rawAttr(wire.VLANAttrTCI, 1))), "vlan"},
		{"vlan not nested attributes", packetPayload(2, 0, hdr, rawAttr(wire.AttrVLAN, 0x81, 0, 0, 5)), "vlan"},
		{"priority too short", packetPayload(2, 0, hdr, short32(wire.AttrPriority)), "priority"},
		{"cgroup classid too short", packetPayload(2, 0, hdr, short32(wire.AttrCgroupClassID)), "cgroup-classid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Packet
			err := p.unmarshal(tt.in)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.what) {
				t.Errorf("err %q does not mention %q", err, tt.what)
			}
		})
	}
}

// TestPacketTruncatedInput cuts real messages at every length: each prefix
// either decodes or fails with ErrMalformed, and a prefix that decodes
// never claims more than it holds.
func TestPacketTruncatedInput(t *testing.T) {
	for _, name := range []string{"udp4-output", "tcp4-syn", "udp4-input-truncated"} {
		full := kernelMessage(t, kernelFixture(t, name))
		for n := range len(full) {
			var p Packet
			err := p.unmarshal(full[:n])
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("%s[:%d]: %v", name, n, err)
				}
				continue
			}
			if n < 4+11 { // nfgenmsg and the 11-byte PACKET_HDR attribute
				t.Errorf("%s[:%d] decoded without a complete packet header", name, n)
			}
		}
	}
}

// kernelCase is what a packet captured from the kernel must decode to.
type kernelCase struct {
	file    string
	want    Packet // every field but Payload
	payload func(t *testing.T, b []byte)
}

// TestPacketKernelFixtures decodes the PACKET messages captured from Linux
// 6.18 by internal/wire's TestRecordKernelPackets (see each file's header
// for the rule and traffic).
func TestPacketKernelFixtures(t *testing.T) {
	out := func(f Family, proto uint16, attrs ...Attr) Packet {
		return Packet{ID: 1, Queue: 3, Family: f, HwProtocol: proto, Hook: HookOutput, OutDev: 1,
			SkbInfo: SkbCsumNotReady, Present: presentSet(append(attrs, AttrPacketHdr, AttrOutDev, AttrSkbInfo)...)}
	}
	udp4 := out(FamilyIPv4, 0x0800, AttrPayload)
	uid := out(FamilyIPv4, 0x0800, AttrPayload, AttrMark, AttrPriority, AttrUID, AttrGID)
	uid.Mark, uid.Priority, uid.UID, uid.GID = 0x2a, 5, 1234, 5678
	icmp := out(FamilyIPv4, 0x0800, AttrPayload) // from a raw socket: checksummed, no skb-info
	icmp.SkbInfo, icmp.Present = 0, presentSet(AttrPacketHdr, AttrOutDev, AttrPayload)
	in := Packet{ID: 1, Queue: 3, Family: FamilyIPv4, HwProtocol: 0x0800, Hook: HookInput, InDev: 1,
		HwAddr: net.HardwareAddr{0, 0, 0, 0, 0, 0}, CapLen: 128, SkbInfo: SkbCsumNotReady,
		Present: presentSet(AttrPacketHdr, AttrInDev, AttrHwAddr, AttrCapLen, AttrSkbInfo, AttrPayload)}
	tests := []kernelCase{
		{"udp4-output", udp4, udpCheck(4, 40000, 9999, "nfqueue udp4")},
		{"udp6-output", out(FamilyIPv6, 0x86dd, AttrPayload), udpCheck(6, 40000, 9999, "nfqueue udp6")},
		{"udp4-uidgid-mark-priority", uid, udpCheck(4, 40002, 9999, "nfqueue uidgid")},
		{"udp6-copymeta", out(FamilyIPv6, 0x86dd), func(t *testing.T, b []byte) {
			if b != nil {
				t.Errorf("payload of %d bytes in copy mode META", len(b))
			}
		}},
		{"udp4-input-truncated", in, func(t *testing.T, b []byte) {
			if len(b) != 32 || b[0] != 0x45 || binary.BigEndian.Uint16(b[2:]) != 128 || string(b[28:]) != "0123" {
				t.Errorf("payload % x", b)
			}
		}},
		{"icmp4-echo", icmp, func(t *testing.T, b []byte) {
			// IPv4, protocol ICMP, echo request id 0x1234 seq 1.
			if len(b) != 20+8+12 || b[9] != 1 || b[20] != 8 || binary.BigEndian.Uint32(b[24:]) != 0x12340001 || string(b[28:]) != "nfqueue icmp" {
				t.Errorf("payload % x", b)
			}
		}},
		{"tcp4-syn", out(FamilyIPv4, 0x0800, AttrPayload), func(t *testing.T, b []byte) {
			// IPv4, TCP 40001 -> 9998, flags SYN only.
			if len(b) < 40 || b[9] != 6 || binary.BigEndian.Uint16(b[20:]) != 40001 ||
				binary.BigEndian.Uint16(b[22:]) != 9998 || b[33] != 0x02 {
				t.Errorf("payload % x", b)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			dgram := kernelFixture(t, tt.file)
			var p Packet
			if err := p.unmarshal(kernelMessage(t, dgram)); err != nil {
				t.Fatal(err)
			}
			tt.payload(t, p.Payload)
			got := p
			got.Payload = nil
			samePacket(t, &got, &tt.want)
			if !within(dgram, p.Payload) || !within(dgram, p.HwAddr) || !within(dgram, p.attrs) {
				t.Error("slices do not alias the datagram")
			}
		})
	}
}

// udpCheck checks an IPv4 or IPv6 UDP datagram's ports and payload.
func udpCheck(version int, sport, dport uint16, data string) func(t *testing.T, b []byte) {
	return func(t *testing.T, b []byte) {
		t.Helper()
		off := 20
		if version == 6 {
			off = 40
		}
		if len(b) < off+8 || int(b[0]>>4) != version || binary.BigEndian.Uint16(b[off:]) != sport ||
			binary.BigEndian.Uint16(b[off+2:]) != dport || string(b[off+8:]) != data {
			t.Errorf("payload % x", b)
		}
	}
}

// TestPacketUnalignedFinalMessage: the kernel ends a PACKET message after
// an unpadded payload, so nlmsg_len is not a multiple of four.
func TestPacketUnalignedFinalMessage(t *testing.T) {
	dgram := kernelFixture(t, "udp4-uidgid-mark-priority")
	if len(dgram)%4 == 0 || int(binary.NativeEndian.Uint32(dgram)) != len(dgram) {
		t.Fatalf("fixture is %d bytes, nlmsg_len %d: not the unaligned case", len(dgram), binary.NativeEndian.Uint32(dgram))
	}
	var p Packet
	if err := p.unmarshal(kernelMessage(t, dgram)); err != nil {
		t.Fatal(err)
	}
	if len(p.Payload) != 42 || &p.Payload[41] != &dgram[len(dgram)-1] {
		t.Errorf("payload %d bytes, does not end at the datagram's end", len(p.Payload))
	}
	// The same with a message built by hand after another one.
	var b []byte
	b, start := wire.AppendHeader(b, wire.QueueType(wire.MsgPacket), 0, 0, wire.ProtoIPv4, 9)
	b = append(b, hdrAttr(2, 0x0800, 3)...)
	b = wire.Finish(b, start)
	first := len(b)
	b, start = wire.AppendHeader(b, wire.QueueType(wire.MsgPacket), 0, 0, wire.ProtoIPv4, 9)
	b = append(b, hdrAttr(3, 0x0800, 3)...)
	b = append(b, unpaddedAttr(wire.AttrPayload, 0x45, 1, 2, 3, 4)...)
	binaryPutLen(b[start:], len(b)-start)
	if (len(b)-first)%4 == 0 {
		t.Fatal("test message is aligned")
	}
	var it wire.Messages
	it.Reset(b)
	var m wire.Message
	var ids []uint32
	for it.Next(&m) {
		if err := p.unmarshal(m.Payload); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ID)
	}
	if it.Err() != nil || len(ids) != 2 || ids[1] != 3 || len(p.Payload) != 5 {
		t.Errorf("ids %v, payload % x, err %v", ids, p.Payload, it.Err())
	}
}

func binaryPutLen(b []byte, n int) { binary.NativeEndian.PutUint32(b, uint32(n)) }

func TestPacketTruncated(t *testing.T) {
	var p Packet
	if err := p.unmarshal(kernelMessage(t, kernelFixture(t, "udp4-input-truncated"))); err != nil {
		t.Fatal(err)
	}
	if !p.Truncated() || p.OrigLen() != 128 || len(p.Payload) != 32 {
		t.Errorf("Truncated %v, OrigLen %d, payload %d bytes", p.Truncated(), p.OrigLen(), len(p.Payload))
	}
	payload := make([]byte, 100)
	for _, tt := range []struct {
		name      string
		p         Packet
		truncated bool
		origLen   int
	}{
		{"no cap-len", Packet{Payload: payload}, false, 100},
		{"cap-len over payload", Packet{Payload: payload, CapLen: 1500, Present: presentSet(AttrCapLen)}, true, 1500},
		{"cap-len equal to payload", Packet{Payload: payload, CapLen: 100, Present: presentSet(AttrCapLen)}, false, 100},
		{"cap-len under payload", Packet{Payload: payload, CapLen: 10, Present: presentSet(AttrCapLen)}, false, 100},
		{"cap-len field without the attribute", Packet{Payload: payload, CapLen: 1500}, false, 100},
		{"meta only, cap-len sent", Packet{CapLen: 60, Present: presentSet(AttrCapLen)}, true, 60},
		{"nothing", Packet{}, false, 0},
	} {
		if got := tt.p.Truncated(); got != tt.truncated {
			t.Errorf("%s: Truncated() = %v", tt.name, got)
		}
		if got := tt.p.OrigLen(); got != tt.origLen {
			t.Errorf("%s: OrigLen() = %d, want %d", tt.name, got, tt.origLen)
		}
	}
}

// TestPacketClone: a clone keeps every value after the receive buffer is
// overwritten, and changing either packet does not change the other.
func TestPacketClone(t *testing.T) {
	vlan := nestAttr(wire.AttrVLAN, wire.AppendBE16(nil, wire.VLANAttrProto, 0x8100), wire.AppendBE16(nil, wire.VLANAttrTCI, 5))
	buf := packetPayload(wire.ProtoBridge, 7,
		hdrAttr(9, 0x0800, 0),
		be32Attr(wire.AttrMark, 1),
		rawAttr(wire.AttrTimestamp, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 6),
		rawAttr(wire.AttrHwAddr, 0, 6, 0, 0, 1, 2, 3, 4, 5, 6, 0, 0),
		rawAttr(wire.AttrSecCtx, 's', 'e', 'c', 0),
		nestAttr(wire.AttrCT, be32Attr(wire.CTAMark, 4)),
		vlan,
		rawAttr(wire.AttrL2Hdr, 0xaa, 0xbb, 0xcc),
		rawAttr(99, 'u', 'n', 'k'),
		unpaddedAttr(wire.AttrPayload, 0x45, 0, 0, 1, 2),
	)
	var p Packet
	if err := p.unmarshal(buf); err != nil {
		t.Fatal(err)
	}
	// want is a copy made independently of Clone.
	want := p
	want.Payload, want.HwAddr, want.SecCtx = bytes.Clone(p.Payload), bytes.Clone(p.HwAddr), bytes.Clone(p.SecCtx)
	want.Conntrack, want.L2Header = bytes.Clone(p.Conntrack), bytes.Clone(p.L2Header)

	c := p.Clone()
	for i := range buf {
		buf[i] = 0xee // the next datagram arrives
	}
	samePacket(t, c, &want)
	if v, ok := c.Attribute(99); !ok || string(v) != "unk" {
		t.Errorf("clone's Attribute(99) = %q, %v", v, ok)
	}
	for _, s := range [][]byte{c.Payload, c.HwAddr, c.SecCtx, c.Conntrack, c.L2Header, c.attrs} {
		if within(buf, s) {
			t.Error("a clone's slice aliases the receive buffer")
		}
	}
	// Writing to one of the clone's slices leaves the others alone, even
	// appending to one (they must not share capacity).
	c.Payload[0] = 0x60
	_ = append(c.HwAddr, 0xff, 0xff, 0xff, 0xff)
	_ = append(c.SecCtx, 'X')
	if p.Payload[0] != 0xee {
		t.Error("writing the clone's Payload changed the original's")
	}
	if !bytes.Equal(c.SecCtx, []byte("sec")) || !bytes.Equal(c.Conntrack, want.Conntrack) || !bytes.Equal(c.L2Header, want.L2Header) {
		t.Errorf("appending to one slice changed another: secctx %q, ct % x, l2 % x", c.SecCtx, c.Conntrack, c.L2Header)
	}
	c2 := c.Clone()
	c2.Payload[1] = 0x77
	if c.Payload[1] == 0x77 {
		t.Error("clone of a clone shares its payload")
	}

	// Nil slices stay nil; a Packet made by hand clones too.
	var empty Packet
	if e := empty.Clone(); e.Payload != nil || e.HwAddr != nil || e.attrs != nil {
		t.Errorf("clone of the zero Packet: %+v", e)
	}
	hand := Packet{ID: 3, Payload: []byte{1, 2}, SecCtx: []byte("x")}
	hc := hand.Clone()
	hand.Payload[0] = 9
	if hc.Payload[0] != 1 || string(hc.SecCtx) != "x" || hc.ID != 3 {
		t.Errorf("clone of a hand-made Packet: %+v", hc)
	}
}

func TestPacketFieldStrings(t *testing.T) {
	for _, tt := range []struct {
		got, want string
	}{
		{FamilyIPv4.String(), "ipv4"}, {FamilyIPv6.String(), "ipv6"}, {FamilyBridge.String(), "bridge"},
		{FamilyUnspec.String(), "unspec"}, {Family(1).String(), "inet"}, {Family(5).String(), "netdev"},
		{Family(99).String(), "family(99)"},
		{HookPrerouting.String(), "prerouting"}, {HookInput.String(), "input"}, {HookForward.String(), "forward"},
		{HookOutput.String(), "output"}, {HookPostrouting.String(), "postrouting"}, {Hook(9).String(), "hook(9)"},
		{AttrPacketHdr.String(), "packet-hdr"}, {AttrCgroupClassID.String(), "cgroup-classid"}, {Attr(2).String(), "verdict-hdr"},
		{Attr(40).String(), "attr(40)"}, {Attr(0).String(), "attr(0)"},
		{presentSet(AttrPacketHdr, AttrMark, AttrPayload).String(), "packet-hdr,mark,payload"}, {AttrSet(0).String(), ""},
		{(SkbCsumNotReady | SkbGSO | SkbCsumNotVerified | 0x10).String(), "csum-not-ready,gso,csum-not-verified,0x10"},
		{SkbInfo(0).String(), ""},
		{CtNew.String(), "new"}, {CtEstablishedReply.String(), "established-reply"}, {CtUntracked.String(), "untracked"},
		{CtInfo(5).String(), "ctinfo(5)"},
	} {
		if tt.got != tt.want {
			t.Errorf("String() = %q, want %q", tt.got, tt.want)
		}
	}
	if v := (VLAN{TCI: 0xa07b}); v.ID() != 0x07b {
		t.Errorf("VLAN.ID() = %#x", v.ID())
	}
	s := SkbCsumNotVerified
	if s.ChecksumNotReady() || s.GSO() || !s.ChecksumNotVerified() {
		t.Error("SkbInfo predicates")
	}
	if presentSet(63).Has(63) != true || presentSet(64).Has(64) || AttrSet(^uint64(0)).Has(64) {
		t.Error("AttrSet bounds")
	}
}

// within reports whether sub lies inside outer's memory (an empty sub
// trivially does).
func within(outer, sub []byte) bool {
	if len(sub) == 0 {
		return true
	}
	o := uintptr(unsafe.Pointer(unsafe.SliceData(outer)))
	s := uintptr(unsafe.Pointer(unsafe.SliceData(sub)))
	return s >= o && s+uintptr(len(sub)) <= o+uintptr(len(outer))
}
