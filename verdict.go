package nfqueue

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/nfqueue-go/nfqueue/internal/wire"
)

// Verdict is what happens to a queued packet: a decision (Accept, Drop,
// Repeat, Stop, QueueTo) and options the kernel applies with it (mark,
// connmark, priority, a replacement payload, ...). A Verdict is a small
// value; the With methods return modified copies. The zero Verdict is Drop.
type Verdict struct {
	o wire.VerdictOpts
}

// Handler returns the verdict for a packet. It runs on Serve's goroutine;
// p and its slices are valid until it returns. To answer later, return
// Defer and call Conn.SetVerdict.
type Handler func(p *Packet) Verdict

// deferCode marks the Defer verdict; it is never sent.
const deferCode = 0xffffffff

// The basic verdicts. They are values to be copied and extended with the
// With methods; never assign to them.
var (
	// Drop discards the packet (NF_DROP).
	Drop = Verdict{o: wire.VerdictOpts{Code: wire.NFDrop}}
	// Accept lets the packet continue with the next rule table or chain at
	// the same hook (NF_ACCEPT).
	Accept = Verdict{o: wire.VerdictOpts{Code: wire.NFAccept}}
	// Repeat runs the hook's chain again from the start (NF_REPEAT). Pair it
	// with a mark the queueing rule skips, or the packet loops back.
	Repeat = Verdict{o: wire.VerdictOpts{Code: wire.NFRepeat}}
	// Stop accepts the packet and skips the rest of the hook's chains
	// (NF_STOP).
	Stop = Verdict{o: wire.VerdictOpts{Code: wire.NFStop}}
	// Defer, returned by a Serve handler, means the handler keeps the
	// packet and gives its verdict later with Conn.SetVerdict, from any
	// goroutine. The packet's slices stop being valid when the handler
	// returns: Clone what is needed later.
	Defer = Verdict{o: wire.VerdictOpts{Code: deferCode}}
)

// QueueTo sends the packet to queue n (NF_QUEUE). If no program listens on
// n, the kernel drops the packet, unless WithBypass is added.
func QueueTo(n uint16) Verdict {
	return Verdict{o: wire.VerdictOpts{Code: uint32(n)<<wire.VerdictQBits | wire.NFQueue}}
}

// VerdictKind is the decision part of a Verdict.
type VerdictKind uint8

// Verdict kinds; the numbers are the kernel's NF_* values.
const (
	KindDrop   VerdictKind = wire.NFDrop   // NF_DROP
	KindAccept VerdictKind = wire.NFAccept // NF_ACCEPT
	KindQueue  VerdictKind = wire.NFQueue  // NF_QUEUE
	KindRepeat VerdictKind = wire.NFRepeat // NF_REPEAT
	KindStop   VerdictKind = wire.NFStop   // NF_STOP
	KindDefer  VerdictKind = 0xff          // no kernel verdict yet (Defer)
)

func (k VerdictKind) String() string {
	switch k {
	case KindDrop:
		return "drop"
	case KindAccept:
		return "accept"
	case KindQueue:
		return "queue"
	case KindRepeat:
		return "repeat"
	case KindStop:
		return "stop"
	case KindDefer:
		return "defer"
	}
	return "verdict(" + strconv.Itoa(int(k)) + ")"
}

// Kind returns the verdict's decision.
func (v Verdict) Kind() VerdictKind {
	if v.o.Code == deferCode {
		return KindDefer
	}
	return VerdictKind(v.o.Code & wire.VerdictMask)
}

// QueueNum returns the target queue of a QueueTo verdict.
func (v Verdict) QueueNum() (uint16, bool) {
	return uint16(v.o.Code >> wire.VerdictQBits), v.Kind() == KindQueue
}

// Bypass reports whether WithBypass was added.
func (v Verdict) Bypass() bool { return v.Kind() == KindQueue && v.o.Code&wire.VerdictFlagBypass != 0 }

// WithBypass makes a QueueTo verdict accept the packet when nobody listens
// on the target queue (NF_VERDICT_FLAG_QUEUE_BYPASS). Other verdicts with it
// are refused when sent.
func (v Verdict) WithBypass() Verdict {
	v.o.Code |= wire.VerdictFlagBypass
	return v
}

// WithMark sets the packet's mark (skb->mark), as -j MARK would.
func (v Verdict) WithMark(mark uint32) Verdict {
	v.o.Set |= wire.OptMark
	v.o.Mark = mark
	return v
}

// WithConnMark sets the mark of the packet's conntrack entry, as -j CONNMARK
// would. It needs no Config flag, but a kernel built with
// CONFIG_NETFILTER_NETLINK_GLUE_CT; other kernels ignore it.
func (v Verdict) WithConnMark(mark uint32) Verdict {
	v.o.Set |= wire.OptConnMark
	v.o.ConnMark = mark
	return v
}

// WithPriority sets the packet's priority (skb->priority, Linux 5.18).
func (v Verdict) WithPriority(prio uint32) Verdict {
	v.o.Set |= wire.OptPriority
	v.o.Priority = prio
	return v
}

// WithPayload replaces the whole packet, from its network header, with
// payload. The kernel does not fix checksums: the new packet must carry
// correct ones. At most MaxPayload bytes; refused for a truncated packet.
// The slice is read when the verdict is sent, not copied before.
//
// The verdict also carries an (empty) NFQA_CT attribute, which makes
// kernels built with CONFIG_NETFILTER_NETLINK_GLUE_CT fix up the sequence
// numbers of a TCP connection whose payload changed length; on other
// kernels a TCP payload must keep its length.
func (v Verdict) WithPayload(payload []byte) Verdict {
	v.o.Set |= wire.OptPayload
	v.o.Payload = payload
	return v
}

// WithCtLabels sets the conntrack labels selected by mask to labels
// (CTA_LABELS with CTA_LABELS_MASK). Like WithConnMark it needs a kernel
// with CONFIG_NETFILTER_NETLINK_GLUE_CT.
func (v Verdict) WithCtLabels(labels, mask [16]byte) Verdict {
	v.o.Set |= wire.OptLabels
	v.o.Labels, v.o.LabelsMask = labels, mask
	return v
}

// WithVLAN replaces the packet's VLAN tag (bridge family only).
func (v Verdict) WithVLAN(tag VLAN) Verdict {
	v.o.Set |= wire.OptVLAN
	v.o.VLANProto, v.o.VLANTCI = tag.Proto, tag.TCI
	return v
}

// WithL2Header replaces the packet's link-layer header (bridge family only);
// it must be exactly as long as the original.
func (v Verdict) WithL2Header(hdr []byte) Verdict {
	v.o.Set |= wire.OptL2Hdr
	v.o.L2Hdr = hdr
	return v
}

// Mark returns the mark set by WithMark.
func (v Verdict) Mark() (uint32, bool) { return v.o.Mark, v.o.Set&wire.OptMark != 0 }

// ConnMark returns the connmark set by WithConnMark.
func (v Verdict) ConnMark() (uint32, bool) { return v.o.ConnMark, v.o.Set&wire.OptConnMark != 0 }

// Priority returns the priority set by WithPriority.
func (v Verdict) Priority() (uint32, bool) { return v.o.Priority, v.o.Set&wire.OptPriority != 0 }

// Payload returns the payload set by WithPayload.
func (v Verdict) Payload() ([]byte, bool) { return v.o.Payload, v.o.Set&wire.OptPayload != 0 }

// CtLabels returns the labels and mask set by WithCtLabels.
func (v Verdict) CtLabels() (labels, mask [16]byte, ok bool) {
	return v.o.Labels, v.o.LabelsMask, v.o.Set&wire.OptLabels != 0
}

// VLAN returns the tag set by WithVLAN.
func (v Verdict) VLAN() (VLAN, bool) {
	return VLAN{Proto: v.o.VLANProto, TCI: v.o.VLANTCI}, v.o.Set&wire.OptVLAN != 0
}

// L2Header returns the header set by WithL2Header.
func (v Verdict) L2Header() ([]byte, bool) { return v.o.L2Hdr, v.o.Set&wire.OptL2Hdr != 0 }

// batchable reports whether the verdict can be sent in a VERDICT_BATCH.
func (v *Verdict) batchable() bool { return v.o.Set&^wire.BatchOpts == 0 }

// sameBatch reports whether two batchable verdicts are equal.
func (v *Verdict) sameBatch(w *Verdict) bool {
	return v.batchable() && v.o.Code == w.o.Code && v.o.Set == w.o.Set &&
		v.o.Mark == w.o.Mark && v.o.Priority == w.o.Priority
}

// holdsSlices reports whether the verdict refers to caller memory that may
// be the receive buffer.
func (v *Verdict) holdsSlices() bool { return v.o.Set&(wire.OptPayload|wire.OptL2Hdr) != 0 }

// check validates the verdict for a packet; truncated says whether that
// packet arrived truncated.
func (v *Verdict) check(truncated bool) error {
	k := v.Kind()
	switch {
	case k == KindDefer:
		return fmt.Errorf("%w: Defer is for Serve handlers, not a verdict to send", ErrInvalidVerdict)
	case k > KindStop || k == 2 || v.o.Code&^(wire.VerdictMask|wire.VerdictFlagBypass|0xffff0000) != 0:
		return fmt.Errorf("%w: unknown verdict code %#x", ErrInvalidVerdict, v.o.Code)
	case k != KindQueue && v.o.Code&^wire.VerdictMask != 0:
		return fmt.Errorf("%w: queue number or bypass on a %v verdict", ErrInvalidVerdict, k)
	case v.o.Set&wire.OptPayload != 0 && len(v.o.Payload) > MaxPayload:
		return fmt.Errorf("%w: payload of %d bytes over %d", ErrInvalidVerdict, len(v.o.Payload), MaxPayload)
	case v.o.Set&wire.OptPayload != 0 && truncated:
		return fmt.Errorf("%w: replacement payload for a truncated packet", ErrInvalidVerdict)
	case v.o.Set&wire.OptL2Hdr != 0 && len(v.o.L2Hdr) > 0xff00:
		return fmt.Errorf("%w: L2 header of %d bytes", ErrInvalidVerdict, len(v.o.L2Hdr))
	}
	return nil
}

// String describes the verdict, e.g. "accept mark=0x7".
func (v Verdict) String() string {
	var b strings.Builder
	k := v.Kind()
	b.WriteString(k.String())
	if n, ok := v.QueueNum(); ok {
		b.WriteString(" ")
		b.WriteString(strconv.Itoa(int(n)))
	}
	if k != KindDefer && v.o.Code&wire.VerdictFlagBypass != 0 {
		b.WriteString(" bypass")
	}
	if m, ok := v.Mark(); ok {
		fmt.Fprintf(&b, " mark=%#x", m)
	}
	if m, ok := v.ConnMark(); ok {
		fmt.Fprintf(&b, " connmark=%#x", m)
	}
	if p, ok := v.Priority(); ok {
		fmt.Fprintf(&b, " priority=%d", p)
	}
	if v.o.Set&wire.OptLabels != 0 {
		fmt.Fprintf(&b, " labels=%x/%x", v.o.Labels, v.o.LabelsMask)
	}
	if v.o.Set&wire.OptVLAN != 0 {
		fmt.Fprintf(&b, " vlan=%#x/%d", v.o.VLANProto, v.o.VLANTCI)
	}
	if v.o.Set&wire.OptL2Hdr != 0 {
		fmt.Fprintf(&b, " l2hdr=%dB", len(v.o.L2Hdr))
	}
	if p, ok := v.Payload(); ok {
		fmt.Fprintf(&b, " payload=%dB", len(p))
	}
	return b.String()
}
