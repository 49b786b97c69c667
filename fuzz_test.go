package nfqueue

import (
	"bytes"
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/nfqueue-go/nfqueue/internal/wire"
)

// FuzzPacket: Packet.unmarshal never panics. On error nothing is claimed
// but that the error matches ErrMalformed. On success the packet has its
// header, every slice lies within the input, every attribute it reports is
// reachable, decoding is deterministic, and a clone is equal and
// independent.
func FuzzPacket(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("internal", "wire", "testdata", "kernel", "*.hex"))
	for _, file := range files {
		dgram := fixtureBytes(f, file)
		var it wire.Messages
		it.Reset(dgram)
		var m wire.Message
		for it.Next(&m) {
			f.Add(m.Payload)
		}
	}
	if len(files) == 0 {
		f.Fatal("no kernel fixtures")
	}
	vlan := nestAttr(wire.AttrVLAN, wire.AppendBE16(nil, wire.VLANAttrProto, 0x8100), wire.AppendBE16(nil, wire.VLANAttrTCI, 5))
	f.Add(packetPayload(wire.ProtoBridge, 1, hdrAttr(1, 0x0800, 0), vlan,
		rawAttr(wire.AttrTimestamp, make([]byte, 16)...), rawAttr(wire.AttrHwAddr, 0, 6, 0, 0, 1, 2, 3, 4, 5, 6, 0, 0),
		rawAttr(wire.AttrSecCtx, 'a', 0), nestAttr(wire.AttrCT, be32Attr(wire.CTAMark, 1)), rawAttr(wire.AttrL2Hdr, 1, 2),
		be32Attr(wire.AttrCapLen, 100), unpaddedAttr(wire.AttrPayload, 1)))
	f.Add([]byte{2, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Packet
		err := p.unmarshal(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not match ErrMalformed", err)
			}
			return
		}
		if !p.Has(AttrPacketHdr) {
			t.Fatal("decoded without a packet header")
		}
		for _, s := range [][]byte{p.Payload, p.HwAddr, p.SecCtx, p.Conntrack, p.L2Header, p.attrs} {
			if !within(b, s) {
				t.Fatal("a slice lies outside the input")
			}
		}
		if len(p.HwAddr) > 8 {
			t.Fatalf("hardware address of %d bytes", len(p.HwAddr))
		}
		for a := Attr(0); a < 64; a++ {
			if _, ok := p.Attribute(uint16(a)); ok != p.Has(a) {
				t.Fatalf("Has(%v) = %v but Attribute finds it: %v", a, p.Has(a), ok)
			}
		}
		_ = p.Truncated()
		_ = p.OrigLen()
		_ = p.Present.String()

		q := Packet{Mark: 1, Payload: []byte{1}, Present: 0xff}
		if err := q.unmarshal(b); err != nil || !reflect.DeepEqual(p, q) {
			t.Fatalf("decoding twice differs: %v", err)
		}

		c := p.Clone()
		for _, s := range [][]byte{c.Payload, c.HwAddr, c.SecCtx, c.Conntrack, c.L2Header, c.attrs} {
			if len(s) > 0 && within(b, s) {
				t.Fatal("a clone's slice aliases the input")
			}
		}
		p.Timestamp, c.Timestamp = p.Timestamp.UTC(), c.Timestamp.UTC()
		pa, ca := p.attrs, c.attrs
		p.attrs, c.attrs = nil, nil
		if !bytes.Equal(pa, ca) || !reflect.DeepEqual(&p, c) {
			t.Fatalf("clone differs:\n%+v\n%+v", p, *c)
		}
	})
}

// FuzzVerdictRoundTrip builds VERDICT and VERDICT_BATCH messages from
// fuzzed options and parses them back: every valid verdict arrives intact.
func FuzzVerdictRoundTrip(f *testing.F) {
	lab, mask := testLabels()
	f.Add(uint32(1), uint8(0), uint32(0), uint32(0), uint32(0), uint16(0), uint16(0), []byte(nil), []byte(nil), []byte(nil), uint32(1), uint16(258))
	f.Add(uint32(wire.NFRepeat), uint8(wire.OptMark), uint32(0x10), uint32(0), uint32(0), uint16(0), uint16(0), []byte(nil), []byte(nil), []byte(nil), uint32(3), uint16(258))
	f.Add(uint32(5<<16|wire.NFQueue|wire.VerdictFlagBypass), uint8(0), uint32(0), uint32(0), uint32(0), uint16(0), uint16(0), []byte(nil), []byte(nil), []byte(nil), uint32(4), uint16(258))
	f.Add(uint32(1), uint8(0x7f), uint32(7), uint32(0x2a), uint32(6), uint16(0x8100), uint16(0x2064),
		bytes.Repeat([]byte{0xab}, 31), make([]byte, 14), append(lab[:], mask[:]...), uint32(0xffffffff), uint16(0))
	f.Fuzz(func(t *testing.T, code uint32, set uint8, mark, connMark, prio uint32, vlanProto, vlanTCI uint16,
		payload, l2, labels []byte, id uint32, queue uint16) {
		v := Verdict{o: wire.VerdictOpts{Code: code, Set: set & 0x7f, Mark: mark, ConnMark: connMark, Priority: prio,
			Payload: payload, L2Hdr: l2, VLANProto: vlanProto, VLANTCI: vlanTCI}}
		copy(v.o.Labels[:], labels)
		if len(labels) > 16 {
			copy(v.o.LabelsMask[:], labels[16:])
		}
		if v.check(false) != nil {
			return // refused before it reaches the wire
		}
		prefix := []byte{0xde, 0xad, 0xbe, 0xef}
		b := wire.AppendVerdict(bytes.Clone(prefix), queue, id, &v.o, 0)
		if !bytes.Equal(b[:4], prefix) {
			t.Fatal("AppendVerdict overwrote the buffer's contents")
		}
		d, err := decodeVerdict(b[4:])
		if err != nil {
			t.Fatalf("%v: %v", v, err)
		}
		if d.typ != wire.MsgVerdict || d.id != id || d.seq != id || d.queue != queue {
			t.Fatalf("%v: header %+v", v, d)
		}
		if err := sameOpts(&d.opts, &v.o, false); err != nil {
			t.Fatalf("%v: %v", v, err)
		}
		d, err = decodeVerdict(wire.AppendVerdictBatch(nil, queue, id, &v.o, wire.FlagAck))
		if err != nil || d.typ != wire.MsgVerdictBatch || d.id != id || d.flags != wire.FlagRequest|wire.FlagAck {
			t.Fatalf("%v: batch %+v, %v", v, d, err)
		}
		if err := sameOpts(&d.opts, &v.o, true); err != nil {
			t.Fatalf("%v: batch: %v", v, err)
		}
	})
}
