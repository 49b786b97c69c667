package wire

import (
	"encoding/binary"
	"path/filepath"
	"testing"
	"unsafe"
)

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

// addFixtureSeeds adds the bytes of every fixture in testdata to f.
func addFixtureSeeds(f *testing.F, add func(b []byte)) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*", "*.hex"))
	if len(files) == 0 {
		f.Fatal("no fixtures")
	}
	for _, file := range files {
		_, b := readFixture(f, file)
		add(b)
	}
}

// FuzzMessages: iterating over messages and their attributes, nested ones
// included, never panics, always ends, and every slice handed out lies
// within the input.
func FuzzMessages(f *testing.F) {
	addFixtureSeeds(f, func(b []byte) { f.Add(b) })
	f.Add([]byte{})
	f.Add(msg(QueueType(MsgPacket), 0, 0, 0xffffffff, nil))
	f.Add(msg(QueueType(MsgPacket), 0, 0, 17, []byte{2, 0, 0, 0, 4}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var it Messages
		it.Reset(b)
		var m Message
		n := 0
		for it.Next(&m) {
			n++
			if n*HeaderLen > len(b) {
				t.Fatalf("%d messages from %d bytes", n, len(b))
			}
			if m.Header.Len < HeaderLen || len(m.Payload) != int(m.Header.Len)-HeaderLen || !within(b, m.Payload) {
				t.Fatalf("message %d: nlmsg_len %d, payload %d bytes", n, m.Header.Len, len(m.Payload))
			}
			if _, attrs, err := SplitGenMsg(m.Payload); err == nil {
				if !within(m.Payload, attrs) {
					t.Fatal("attributes outside the payload")
				}
				walkAttrs(t, attrs, 0)
			}
			if m.Header.Type == NLMsgError {
				_, _ = ParseError(m.Header.Flags, m.Payload)
			}
		}
		if it.Remaining() || it.Next(&m) {
			t.Fatal("iteration did not end")
		}
		if it.Err() == nil && n == 0 && len(b) > 0 {
			t.Fatal("bytes left without an error")
		}
	})
}

// walkAttrs iterates b as attributes and each value as nested attributes,
// checking that iteration is bounded and stays within b.
func walkAttrs(t *testing.T, b []byte, depth int) {
	a := NewAttrs(b)
	n := 0
	for a.Next() {
		n++
		if n*AttrHdrLen > len(b) {
			t.Fatalf("%d attributes from %d bytes", n, len(b))
		}
		d := a.Data()
		if !within(b, d) || cap(d) != len(d) || a.Type() > AttrTypeMask {
			t.Fatalf("attribute %d: type %#x, %d bytes (cap %d)", n, a.Type(), len(d), cap(d))
		}
		if depth < 4 && len(d) >= AttrHdrLen {
			walkAttrs(t, d, depth+1)
		}
		// The value decoders accept any input.
		_, _ = BE32(d)
		_, _ = BE16(d)
		_, _, _ = VerdictHdr(d)
		_, _, _, _ = PacketHdr(d)
		_, _, _ = Timestamp(d)
		_, _, _ = VLAN(d)
		if hw, ok := HwAddr(d); ok && (!within(d, hw) || len(hw) > 8) {
			t.Fatalf("HwAddr returned %d bytes outside its input", len(hw))
		}
	}
	if a.Next() {
		t.Fatal("Next after the end")
	}
}

// FuzzParseError: ParseError never panics; on success its slices lie
// within the input, the echoed header is the bytes after the code, and a
// capped error has no echoed payload.
func FuzzParseError(f *testing.F) {
	addFixtureSeeds(f, func(b []byte) {
		var it Messages
		it.Reset(b)
		var m Message
		for it.Next(&m) {
			f.Add(m.Header.Flags, m.Payload)
		}
	})
	f.Add(uint16(FlagAckTLVs), errPayload(-22, 21, 1, 1, []byte{1, 2, 3, 4, 5, 0, 0, 0}, attr(ErrAttrMsg, 0, []byte("x\x00"))))
	f.Add(uint16(FlagCapped|FlagAckTLVs), errPayload(-22, 0xffffffff, 1, 1, attr(ErrAttrOffs, 0, []byte{1, 0, 0, 0})))
	f.Fuzz(func(t *testing.T, flags uint16, b []byte) {
		e, err := ParseError(flags, b)
		if err != nil {
			if len(b) >= 4+HeaderLen {
				t.Fatalf("error %v for %d bytes", err, len(b))
			}
			return
		}
		if !within(b, e.OrigPayload) || !within(b, e.ExtMsg) {
			t.Fatal("slices outside the input")
		}
		if flags&FlagCapped != 0 && e.OrigPayload != nil {
			t.Fatal("echoed payload in a capped error")
		}
		if flags&FlagAckTLVs == 0 && (e.ExtMsg != nil || e.ExtOffset != 0) {
			t.Fatal("extended ack without NLM_F_ACK_TLVS")
		}
		if e.Orig.Len != binary.NativeEndian.Uint32(b[4:]) || e.Orig.Seq != binary.NativeEndian.Uint32(b[12:]) {
			t.Fatalf("echoed header %+v", e.Orig)
		}
		code := int32(binary.NativeEndian.Uint32(b))
		if code < 0 && e.Errno != uint32(-code) || code >= 0 && e.Errno != uint32(code) {
			t.Fatalf("errno %d from code %d", e.Errno, code)
		}
	})
}
