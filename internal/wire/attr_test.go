package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

// attr builds an attribute by hand: nla_len (0 = the real, unpadded length),
// nla_type, value, without padding.
func attr(typ uint16, length uint16, value []byte) []byte {
	if length == 0 {
		length = uint16(AttrHdrLen + len(value))
	}
	b := binary.NativeEndian.AppendUint16(nil, length)
	b = binary.NativeEndian.AppendUint16(b, typ)
	return append(b, value...)
}

type gotAttr struct {
	typ  uint16
	data []byte
}

func collectAttrs(b []byte) ([]gotAttr, error) {
	a := NewAttrs(b)
	var out []gotAttr
	for a.Next() {
		out = append(out, gotAttr{a.Type(), a.Data()})
	}
	return out, a.Err()
}

func TestAttrs(t *testing.T) {
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	mark := attr(AttrMark, 0, []byte{0, 0, 0, 7})
	odd := attr(AttrPayload, 0, []byte{1, 2, 3})
	tests := []struct {
		name string
		in   []byte
		want []gotAttr
		err  error
	}{
		{name: "empty", in: nil},
		{name: "one", in: mark, want: []gotAttr{{AttrMark, []byte{0, 0, 0, 7}}}},
		{name: "unpadded final attribute", in: cat(mark, odd),
			want: []gotAttr{{AttrMark, []byte{0, 0, 0, 7}}, {AttrPayload, []byte{1, 2, 3}}}},
		{name: "padded odd attribute then another", in: cat(padded(odd), mark),
			want: []gotAttr{{AttrPayload, []byte{1, 2, 3}}, {AttrMark, []byte{0, 0, 0, 7}}}},
		{name: "final attribute with partial padding", in: cat(odd, []byte{0}),
			want: []gotAttr{{AttrPayload, []byte{1, 2, 3}}}},
		{name: "empty value", in: cat(attr(AttrPayload, 0, nil), mark),
			want: []gotAttr{{AttrPayload, []byte{}}, {AttrMark, []byte{0, 0, 0, 7}}}},
		{name: "nested and byte-order bits masked", in: cat(attr(AttrCT|AttrNested, 0, nil), attr(AttrMark|AttrNetOrder, 0, nil), attr(0xffff, 0, nil)),
			want: []gotAttr{{AttrCT, []byte{}}, {AttrMark, []byte{}}, {AttrTypeMask, []byte{}}}},
		{name: "unknown type kept", in: attr(0x3000, 0, []byte{9}), want: []gotAttr{{0x3000, []byte{9}}}},
		{name: "short header", in: []byte{8, 0, 3}, err: ErrShort},
		{name: "short trailing header", in: cat(mark, []byte{4, 0}), want: []gotAttr{{AttrMark, []byte{0, 0, 0, 7}}}, err: ErrShort},
		{name: "nla_len below header", in: attr(AttrMark, 3, []byte{0, 0, 0, 0}), err: ErrLength},
		{name: "nla_len 0", in: cat(mark, []byte{0, 0, 1, 0}), want: []gotAttr{{AttrMark, []byte{0, 0, 0, 7}}}, err: ErrLength},
		{name: "nla_len past end", in: attr(AttrMark, 9, []byte{0, 0, 0, 0}), err: ErrLength},
		{name: "nla_len 0xffff", in: attr(AttrPayload, 0xffff, make([]byte, 100)), err: ErrLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := collectAttrs(tt.in)
			if !errors.Is(err, tt.err) {
				t.Errorf("err %v, want %v", err, tt.err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i].typ != tt.want[i].typ || !bytes.Equal(got[i].data, tt.want[i].data) {
					t.Errorf("attribute %d: %d % x, want %d % x", i, got[i].typ, got[i].data, tt.want[i].typ, tt.want[i].data)
				}
			}
		})
	}
}

func TestAttrsDataIsCapped(t *testing.T) {
	b := append(attr(AttrMark, 0, []byte{1, 2, 3, 4}), attr(AttrPayload, 0, []byte{5, 6})...)
	a := NewAttrs(b)
	a.Next()
	d := a.Data()
	if cap(d) != 4 || &d[0] != &b[4] {
		t.Errorf("Data has cap %d, want 4 and aliasing the input", cap(d))
	}
	// Appending to one attribute's value cannot overwrite the next.
	_ = append(d, 0xff)
	if !a.Next() || a.Type() != AttrPayload || !bytes.Equal(a.Data(), []byte{5, 6}) {
		t.Errorf("next attribute %d % x", a.Type(), a.Data())
	}
	if a.Next() || a.Err() != nil {
		t.Errorf("after the last: err %v", a.Err())
	}
	// The sticky error.
	a = NewAttrs([]byte{1})
	first, second := a.Next(), a.Next()
	if first || second || a.Err() != ErrShort {
		t.Errorf("err %v", a.Err())
	}
}

func TestAttrsIterationIsBounded(t *testing.T) {
	// Each attribute consumes at least four bytes, so iteration ends.
	b := bytes.Repeat([]byte{4, 0, 1, 0}, 1000)
	n := 0
	a := NewAttrs(b)
	for a.Next() {
		n++
	}
	if n != 1000 || a.Err() != nil {
		t.Errorf("%d attributes, err %v", n, a.Err())
	}
}

func TestBE(t *testing.T) {
	if v, ok := BE32([]byte{1, 2, 3, 4, 5}); !ok || v != 0x01020304 {
		t.Errorf("BE32 = %#x, %v", v, ok)
	}
	if v, ok := BE32([]byte{1, 2, 3}); ok || v != 0 {
		t.Errorf("BE32(3 bytes) = %#x, %v", v, ok)
	}
	if v, ok := BE16([]byte{0x86, 0xdd}); !ok || v != 0x86dd {
		t.Errorf("BE16 = %#x, %v", v, ok)
	}
	if v, ok := BE16([]byte{1}); ok || v != 0 {
		t.Errorf("BE16(1 byte) = %#x, %v", v, ok)
	}
}

func TestAppendAttr(t *testing.T) {
	requireLittleEndian(t)
	checkBytes(t, "odd", AppendAttr(nil, AttrPayload, []byte{1, 2, 3, 4, 5}),
		[]byte{9, 0, 10, 0, 1, 2, 3, 4, 5, 0, 0, 0})
	checkBytes(t, "empty", AppendAttr(nil, AttrPayload, nil), []byte{4, 0, 10, 0})
	checkBytes(t, "be32", AppendBE32(nil, AttrMark, 0xdeadbeef), []byte{8, 0, 3, 0, 0xde, 0xad, 0xbe, 0xef})
	checkBytes(t, "be16", AppendBE16(nil, VLANAttrTCI, 0x1234), []byte{6, 0, 2, 0, 0x12, 0x34, 0, 0})
	b, n := BeginNest([]byte{0xaa, 0xbb, 0xcc, 0xdd}, AttrCT)
	b = AppendBE32(b, CTAMark, 1)
	b = EndNest(b, n)
	checkBytes(t, "nest", b, []byte{0xaa, 0xbb, 0xcc, 0xdd, 12, 0, 11, 0x80, 8, 0, 8, 0, 0, 0, 0, 1})
	b, n = BeginNest(nil, AttrVLAN)
	checkBytes(t, "empty nest", EndNest(b, n), []byte{4, 0, 19, 0x80})
}

// An attribute value longer than 65531 bytes does not fit nla_len. The
// encoder cannot report it; the callers refuse such values (see
// TestVerdictCheckPayloadLimit in the root package).
func TestAppendAttrLimit(t *testing.T) {
	max := make([]byte, math.MaxUint16-AttrHdrLen)
	b := AppendAttr(nil, AttrPayload, max)
	got, err := collectAttrs(b)
	if err != nil || len(got) != 1 || len(got[0].data) != len(max) {
		t.Errorf("a %d-byte value does not round-trip: %v", len(max), err)
	}
}

func TestDecoders(t *testing.T) {
	t.Run("VerdictHdr", func(t *testing.T) {
		if c, id, ok := VerdictHdr([]byte{0, 5, 0x80, 3, 0, 0, 0, 9, 0xff}); !ok || c != 0x58003 || id != 9 {
			t.Errorf("= %#x, %d, %v", c, id, ok)
		}
		if c, id, ok := VerdictHdr(make([]byte, 7)); ok || c != 0 || id != 0 {
			t.Errorf("short: %#x %d %v", c, id, ok)
		}
	})
	t.Run("PacketHdr", func(t *testing.T) {
		if id, p, h, ok := PacketHdr([]byte{0xff, 0xff, 0xff, 0xfe, 0x86, 0xdd, 4}); !ok || id != 0xfffffffe || p != 0x86dd || h != 4 {
			t.Errorf("= %#x %#x %d %v", id, p, h, ok)
		}
		// The kernel's struct is 7 bytes, packed; a padded 8-byte value is fine too.
		if _, _, h, ok := PacketHdr([]byte{0, 0, 0, 1, 8, 0, 1, 0}); !ok || h != 1 {
			t.Errorf("8 bytes: hook %d ok %v", h, ok)
		}
		if _, _, _, ok := PacketHdr(make([]byte, 6)); ok {
			t.Error("6 bytes accepted")
		}
	})
	t.Run("HwAddr", func(t *testing.T) {
		v := []byte{0, 6, 0, 0, 1, 2, 3, 4, 5, 6, 0, 0}
		if hw, ok := HwAddr(v); !ok || !bytes.Equal(hw, []byte{1, 2, 3, 4, 5, 6}) || cap(hw) != 6 {
			t.Errorf("= % x (cap %d), %v", hw, cap(hw), ok)
		}
		if hw, ok := HwAddr([]byte{0, 8, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}); !ok || len(hw) != 8 {
			t.Errorf("8-byte address: % x %v", hw, ok)
		}
		if hw, ok := HwAddr([]byte{0, 0, 0, 0}); !ok || len(hw) != 0 {
			t.Errorf("empty address: % x %v", hw, ok)
		}
		for _, bad := range [][]byte{{0, 6, 0}, {0, 6, 0, 0, 1, 2}, {0, 9, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {0xff, 0xff, 0, 0}} {
			if hw, ok := HwAddr(bad); ok || hw != nil {
				t.Errorf("HwAddr(% x) = % x, %v", bad, hw, ok)
			}
		}
	})
	t.Run("Timestamp", func(t *testing.T) {
		v := []byte{0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x00, 0, 0, 0, 0, 0, 0x0f, 0x42, 0x3f}
		if s, us, ok := Timestamp(v); !ok || s != 0x6553f100 || us != 999999 {
			t.Errorf("= %d %d %v", s, us, ok)
		}
		if _, _, ok := Timestamp(v[:15]); ok {
			t.Error("15 bytes accepted")
		}
		if s, _, ok := Timestamp(bytes.Repeat([]byte{0xff}, 16)); !ok || s != -1 {
			t.Errorf("all ones: %d %v", s, ok)
		}
	})
	t.Run("VLAN", func(t *testing.T) {
		good := append(padded(attr(VLANAttrProto, 0, []byte{0x81, 0})), attr(VLANAttrTCI, 0, []byte{0x20, 0x64})...)
		if p, tci, ok := VLAN(good); !ok || p != 0x8100 || tci != 0x2064 {
			t.Errorf("= %#x %#x %v", p, tci, ok)
		}
		reversed := append(padded(attr(VLANAttrTCI|AttrNetOrder, 0, []byte{0, 5})), attr(VLANAttrProto, 0, []byte{0x88, 0xa8})...)
		if p, tci, ok := VLAN(reversed); !ok || p != 0x88a8 || tci != 5 {
			t.Errorf("reversed: %#x %#x %v", p, tci, ok)
		}
		for name, bad := range map[string][]byte{
			"empty":         nil,
			"no tci":        attr(VLANAttrProto, 0, []byte{0x81, 0}),
			"no proto":      attr(VLANAttrTCI, 0, []byte{0, 1}),
			"short tci":     append(padded(attr(VLANAttrProto, 0, []byte{0x81, 0})), attr(VLANAttrTCI, 0, []byte{1})...),
			"bad nla_len":   append(padded(attr(VLANAttrProto, 0, []byte{0x81, 0})), append(padded(attr(VLANAttrTCI, 0, []byte{0, 1})), 9, 0, 1, 0)...),
			"not an attr":   {1, 2, 3},
			"tci then junk": append(padded(good), 0xff, 0xff, 0xff),
		} {
			if _, _, ok := VLAN(bad); ok {
				t.Errorf("%s accepted", name)
			}
		}
	})
}
