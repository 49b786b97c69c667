package nfqueue

import (
	"testing"

	"github.com/nfqueue-go/nfqueue/internal/wire"
)

// The per-packet codec paths allocate nothing: decoding a packet into a
// caller's Packet, building verdicts into a buffer with room, and the
// tracker's bookkeeping. (The same end to end through a real socket is
// TestIntegrationZeroAllocPull and TestIntegrationZeroAllocServe.)

var allocFixtures = []string{"udp4-output", "udp6-output", "tcp4-syn", "udp4-uidgid-mark-priority", "udp4-input-truncated"}

func TestAllocsPacketUnmarshal(t *testing.T) {
	for _, name := range allocFixtures {
		b := kernelMessage(t, kernelFixture(t, name))
		var p Packet
		var err error
		allocs := testing.AllocsPerRun(200, func() {
			err = p.unmarshal(b)
			_, _ = p.Attribute(wire.AttrPayload)
			_ = p.Truncated()
		})
		if err != nil {
			t.Fatal(err)
		}
		if allocs != 0 {
			t.Errorf("%s: %v allocations to decode, want 0", name, allocs)
		}
	}
	// A message with every attribute, timestamp and VLAN included.
	b := packetPayload(wire.ProtoBridge, 1, hdrAttr(1, 0x0800, 0),
		nestAttr(wire.AttrVLAN, wire.AppendBE16(nil, wire.VLANAttrProto, 0x8100), wire.AppendBE16(nil, wire.VLANAttrTCI, 5)),
		rawAttr(wire.AttrTimestamp, make([]byte, 16)...), rawAttr(wire.AttrHwAddr, 0, 6, 0, 0, 1, 2, 3, 4, 5, 6, 0, 0),
		rawAttr(wire.AttrSecCtx, 'a', 0), nestAttr(wire.AttrCT, be32Attr(wire.CTAMark, 1)), rawAttr(wire.AttrL2Hdr, 1, 2),
		be32Attr(wire.AttrMark, 1), be32Attr(wire.AttrIfIndexIn, 1), be32Attr(wire.AttrIfIndexPhysIn, 2), be32Attr(wire.AttrCTInfo, 2),
		be32Attr(wire.AttrUID, 1), be32Attr(wire.AttrGID, 1), be32Attr(wire.AttrPriority, 1), be32Attr(wire.AttrCgroupClassID, 1),
		be32Attr(wire.AttrSkbInfo, 1), be32Attr(wire.AttrCapLen, 100), unpaddedAttr(wire.AttrPayload, 1))
	var p Packet
	if allocs := testing.AllocsPerRun(200, func() { _ = p.unmarshal(b) }); allocs != 0 {
		t.Errorf("every attribute: %v allocations, want 0", allocs)
	}
	// Decoding errors do not allocate either... except for the error value
	// itself, which is made with fmt.Errorf: a malformed message is rare
	// and counted, so that is allowed.
}

func TestAllocsMessagesAndErrors(t *testing.T) {
	dgram := kernelFixture(t, "udp4-output")
	errDgram := kernelFixture(t, "error-extack-policy")
	var it wire.Messages
	var m wire.Message
	allocs := testing.AllocsPerRun(200, func() {
		it.Reset(dgram)
		for it.Next(&m) {
		}
		it.Reset(errDgram)
		for it.Next(&m) {
			_, _ = wire.ParseError(m.Header.Flags, m.Payload)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations, want 0", allocs)
	}
}

func TestAllocsAppendVerdict(t *testing.T) {
	lab, mask := testLabels()
	payload := make([]byte, 1500)
	buf := make([]byte, 0, 4096)
	for _, v := range []Verdict{
		Accept, Drop.WithMark(1), QueueTo(5).WithBypass(), Accept.WithMark(7).WithConnMark(0x2a),
		Accept.WithCtLabels(lab, mask).WithPriority(1), Accept.WithVLAN(VLAN{0x8100, 1}).WithL2Header(make([]byte, 14)),
		Accept.WithPayload(payload),
	} {
		allocs := testing.AllocsPerRun(200, func() {
			b := wire.AppendVerdict(buf[:0], 1, 2, &v.o, 0)
			b = wire.AppendVerdict(b, 1, 3, &v.o, wire.FlagAck) // a second message in the same datagram
			_ = wire.AppendVerdictBatch(b, 1, 4, &v.o, 0)
		})
		if allocs != 0 {
			t.Errorf("%v: %v allocations, want 0", v, allocs)
		}
	}
	cfg := (&Config{}).bindMsg(0)
	if allocs := testing.AllocsPerRun(200, func() { _ = wire.AppendConfig(buf[:0], 1, &cfg) }); allocs != 0 {
		t.Errorf("AppendConfig: %v allocations, want 0", allocs)
	}
}

func TestAllocsTracker(t *testing.T) {
	tr := newTracker(1024)
	id := uint32(0xffffff00) // across the wrap
	allocs := testing.AllocsPerRun(1000, func() {
		for range 8 {
			tr.add(id, 0, 1)
			id++
		}
		_, _ = tr.take(id - 8)
		_ = tr.missingErr(id - 8)
		_ = tr.missingErr(id + 100)
		_ = tr.takeUpTo(id - 1)
	})
	if allocs != 0 {
		t.Errorf("%v allocations, want 0", allocs)
	}
	if tr.n != 0 || len(tr.slots) != 2048 {
		t.Errorf("%d left in %d slots", tr.n, len(tr.slots))
	}
}

// TestAllocsClone: Packet.Clone is documented as "made with a single
// allocation" (beyond the Packet itself): all of a packet's slices lie in
// its attributes, so one copy of them can back every slice.
func TestAllocsClone(t *testing.T) {
	b := kernelMessage(t, kernelFixture(t, "udp4-input-truncated")) // payload and hardware address
	var p Packet
	if err := p.unmarshal(b); err != nil {
		t.Fatal(err)
	}
	var c *Packet
	allocs := testing.AllocsPerRun(100, func() { c = p.Clone() })
	if allocs > 2 {
		t.Errorf("Clone: %v allocations for a packet with a payload and a hardware address; "+
			"the doc promises a single allocation besides the Packet (one copy of the attributes backing every slice)", allocs)
	}
	samePacket(t, c, &p)
}

func BenchmarkPacketUnmarshal(b *testing.B) {
	for _, name := range []string{"udp4-output", "tcp4-syn", "udp4-uidgid-mark-priority"} {
		msg := kernelMessage(b, kernelFixture(b, name))
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			var p Packet
			for b.Loop() {
				if err := p.unmarshal(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkPacketClone(b *testing.B) {
	var p Packet
	if err := p.unmarshal(kernelMessage(b, kernelFixture(b, "udp4-input-truncated"))); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = p.Clone()
	}
}

func BenchmarkAppendVerdict(b *testing.B) {
	for _, bc := range []struct {
		name string
		v    Verdict
	}{
		{"accept", Accept},
		{"mark-connmark", Accept.WithMark(7).WithConnMark(0x2a)},
		{"payload-1500", Accept.WithPayload(make([]byte, 1500))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 4096)
			id := uint32(0)
			for b.Loop() {
				id++
				buf = wire.AppendVerdict(buf[:0], 0, id, &bc.v.o, 0)
			}
		})
	}
	b.Run("128-per-datagram", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 128*40)
		v := Accept.WithMark(1)
		for b.Loop() {
			buf = buf[:0]
			for id := range uint32(128) {
				buf = wire.AppendVerdict(buf, 0, id, &v.o, 0)
			}
		}
	})
}

func BenchmarkAppendVerdictBatch(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 64)
	v := Accept.WithMark(1).WithPriority(2)
	id := uint32(0)
	for b.Loop() {
		id++
		buf = wire.AppendVerdictBatch(buf[:0], 0, id, &v.o, 0)
	}
}

func BenchmarkTrackerAddTake(b *testing.B) {
	b.ReportAllocs()
	tr := newTracker(1024)
	id := uint32(0)
	for b.Loop() {
		id++
		tr.add(id, 0, 0)
		if _, ok := tr.take(id); !ok {
			b.Fatal("lost")
		}
	}
}
