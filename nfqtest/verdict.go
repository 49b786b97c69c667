package nfqtest

import (
	"bytes"
	"fmt"
	"strings"
	"syscall"

	"github.com/nfqueue-go/nfqueue"
	"github.com/nfqueue-go/nfqueue/internal/wire"
)

// Verdict is a verdict as the Kernel received it: one per packet, also for
// packets covered by a VERDICT_BATCH. Options the message did not carry
// are zero, with their Has field false (slices nil).
type Verdict struct {
	ID    uint32              // the packet's id
	Queue uint16              // the queue the message was addressed to
	Kind  nfqueue.VerdictKind // the decision
	Code  uint32              // the verdict field as sent: NF_* with queue number and flags
	// Target and Bypass are the queue and bypass flag of a QueueTo verdict.
	Target uint16
	Bypass bool
	// Batch reports that the verdict came in a VERDICT_BATCH message.
	Batch bool

	Mark        uint32
	HasMark     bool
	ConnMark    uint32
	HasConnMark bool
	Priority    uint32
	HasPriority bool
	Labels      [16]byte // conntrack labels and their mask
	LabelsMask  [16]byte
	HasLabels   bool
	VLAN        nfqueue.VLAN
	HasVLAN     bool
	Payload     []byte // replacement payload, nil when none
	L2Header    []byte // replacement link-layer header, nil when none

	// Err is the errno the Kernel answered the verdict with: one chosen
	// with FailVerdict, or EINVAL for a verdict code the kernel refuses.
	// The verdict was not applied. Verdicts for packets that were not
	// waiting are answered with ENOENT and not recorded.
	Err syscall.Errno
}

// decodeVerdict decodes the attributes of a VERDICT (or, with batch, a
// VERDICT_BATCH) message. ok is false when the kernel would refuse the
// message with EINVAL: no verdict header, or a known attribute of the
// wrong size. Like the kernel, it stops at a malformed attribute header
// and ignores the rest of the message; bad then says why. A batch carries
// only a mark and a priority; like the kernel, it ignores other
// attributes.
func decodeVerdict(attrs []byte, batch bool) (v Verdict, ok bool, bad error) {
	hasHdr, good := false, true
	a := wire.NewAttrs(attrs)
	for a.Next() {
		d := a.Data()
		switch t := a.Type(); {
		case t == wire.AttrVerdictHdr:
			v.Code, v.ID, hasHdr = wire.VerdictHdr(d)
		case t == wire.AttrMark:
			v.Mark, v.HasMark = wire.BE32(d)
			good = good && v.HasMark
		case t == wire.AttrPriority:
			v.Priority, v.HasPriority = wire.BE32(d)
			good = good && v.HasPriority
		case batch:
		case t == wire.AttrCT:
			var err error
			good, err = decodeCT(d, &v)
			if bad == nil {
				bad = err
			}
		case t == wire.AttrVLAN:
			v.VLAN.Proto, v.VLAN.TCI, v.HasVLAN = wire.VLAN(d)
			good = good && v.HasVLAN
		case t == wire.AttrL2Hdr:
			v.L2Header = append([]byte{}, d...)
		case t == wire.AttrPayload:
			v.Payload = append([]byte{}, d...)
		}
	}
	if err := a.Err(); err != nil {
		bad = err
	}
	v.Kind = nfqueue.VerdictKind(v.Code & wire.VerdictMask)
	if v.Kind == nfqueue.KindQueue {
		v.Target = uint16(v.Code >> wire.VerdictQBits)
		v.Bypass = v.Code&wire.VerdictFlagBypass != 0
	}
	return v, hasHdr && good, bad
}

// decodeCT decodes the nested conntrack attributes of a verdict, as
// decodeVerdict does.
func decodeCT(b []byte, v *Verdict) (ok bool, bad error) {
	var hasLabels, hasMask bool
	a := wire.NewAttrs(b)
	for a.Next() {
		d := a.Data()
		switch a.Type() {
		case wire.CTAMark:
			v.ConnMark, v.HasConnMark = wire.BE32(d)
			if !v.HasConnMark {
				return false, nil
			}
		case wire.CTALabels:
			hasLabels = copy(v.Labels[:], d) == len(v.Labels)
		case wire.CTALabelsMask:
			hasMask = copy(v.LabelsMask[:], d) == len(v.LabelsMask)
		}
	}
	v.HasLabels = hasLabels && hasMask
	return true, a.Err()
}

// Value returns the verdict as an nfqueue.Verdict with the same decision
// and options. For a code the kernel refuses it returns the zero Verdict
// (Drop).
func (v Verdict) Value() nfqueue.Verdict {
	var out nfqueue.Verdict
	switch v.Kind {
	case nfqueue.KindDrop:
		out = nfqueue.Drop
	case nfqueue.KindAccept:
		out = nfqueue.Accept
	case nfqueue.KindRepeat:
		out = nfqueue.Repeat
	case nfqueue.KindStop:
		out = nfqueue.Stop
	case nfqueue.KindQueue:
		out = nfqueue.QueueTo(v.Target)
		if v.Bypass {
			out = out.WithBypass()
		}
	default:
		return nfqueue.Verdict{}
	}
	if v.HasMark {
		out = out.WithMark(v.Mark)
	}
	if v.HasConnMark {
		out = out.WithConnMark(v.ConnMark)
	}
	if v.HasPriority {
		out = out.WithPriority(v.Priority)
	}
	if v.HasLabels {
		out = out.WithCtLabels(v.Labels, v.LabelsMask)
	}
	if v.HasVLAN {
		out = out.WithVLAN(v.VLAN)
	}
	if v.L2Header != nil {
		out = out.WithL2Header(v.L2Header)
	}
	if v.Payload != nil {
		out = out.WithPayload(v.Payload)
	}
	return out
}

// Matches reports whether the received verdict is want: the same decision
// and the same options with the same values, replacement payload bytes
// included. A replacement L2 header is compared by length only, as
// nfqueue.Verdict does not expose its bytes.
func (v Verdict) Matches(want nfqueue.Verdict) bool {
	if v.Value().String() != want.String() {
		return false
	}
	p, _ := want.Payload()
	return bytes.Equal(v.Payload, p)
}

// String describes the verdict, e.g. "packet 3: accept mark=0x7 (batch)".
func (v Verdict) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "packet %d: ", v.ID)
	if k := v.Kind; k <= nfqueue.KindStop && k != 2 {
		b.WriteString(v.Value().String())
	} else {
		fmt.Fprintf(&b, "verdict code %#x", v.Code)
	}
	if v.Batch {
		b.WriteString(" (batch)")
	}
	if v.Err != 0 {
		fmt.Fprintf(&b, " refused: %v", v.Err)
	}
	return b.String()
}
