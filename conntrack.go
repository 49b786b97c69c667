package nfqueue

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/nfqueue-go/nfqueue/internal/wire"
)

// ErrNoConntrack is returned by Packet.DecodeConntrack when the packet came
// without a conntrack entry (no NFQA_CT attribute). The kernel sends one
// only when the queue has Config.Conntrack set and the packet is tracked:
// untracked packets (-j NOTRACK, ct notrack), packets conntrack rejected as
// invalid and packets in a network namespace without conntrack come
// without. Kernels built without CONFIG_NETFILTER_NETLINK_GLUE_CT never send
// it; on those Open refuses Config.Conntrack with ErrNotSupported.
var ErrNoConntrack = errors.New("packet has no conntrack entry (NFQA_CT)")

// Conntrack is the conntrack entry of a queued packet, decoded from NFQA_CT.
//
// The kernel builds NFQA_CT with ctnetlink_glue_build
// (net/netfilter/nf_conntrack_netlink.c): the same nested CTA_* attributes
// as a ctnetlink dump, in this order: CTA_TUPLE_ORIG, CTA_TUPLE_REPLY,
// CTA_ZONE (non-default zones only), CTA_ID, CTA_STATUS, CTA_TIMEOUT,
// CTA_PROTOINFO (protocols with state), CTA_COUNTERS_ORIG/REPLY and
// CTA_TIMESTAMP (with accounting and timestamps enabled), CTA_HELP (with a
// helper), CTA_SECCTX (with a secmark), CTA_TUPLE_MASTER (expected
// connections), CTA_SEQ_ADJ_ORIG/REPLY (sequence adjustment), CTA_SYNPROXY,
// CTA_MARK and CTA_LABELS (when a label is set). It needs Config.Conntrack,
// and a kernel with CONFIG_NETFILTER_NETLINK_GLUE_CT: without it the kernel
// never sends NFQA_CT and Open refuses Config.Conntrack with ErrNotSupported.
//
// Like Packet, Conntrack is a struct of values: a field the kernel did not
// send holds its zero value and Present tells the two apart. Helper and
// SecCtx alias the decoded bytes, that is the Conn's receive buffer when
// decoded from a Packet; decode from Packet.Clone to keep them longer.
// Attributes that have no field here are available through Attribute.
type Conntrack struct {
	Original Tuple    // the original direction (CTA_TUPLE_ORIG)
	Reply    Tuple    // the reply direction (CTA_TUPLE_REPLY)
	Zone     uint16   // conntrack zone of both directions, 0 for the default zone (CTA_ZONE)
	ID       uint32   // entry id, stable while the entry lives (CTA_ID)
	Status   CtStatus // IPS_* status bits (CTA_STATUS)
	// Timeout is the entry's remaining lifetime in seconds; for an entry not
	// yet confirmed (the first packet of a connection) it is the timeout
	// the entry will start with (CTA_TIMEOUT).
	Timeout uint32
	// TCPState is the TCP connection state, for TCP entries
	// (CTA_PROTOINFO / CTA_PROTOINFO_TCP / CTA_PROTOINFO_TCP_STATE).
	TCPState TCPState
	Helper   []byte // name of the attached helper, e.g. "ftp" (CTA_HELP / CTA_HELP_NAME)
	SecCtx   []byte // LSM security context of the entry's secmark (CTA_SECCTX / CTA_SECCTX_NAME)
	Mark     uint32 // connmark; sent even when 0 (CTA_MARK)
	// Labels is the 128-bit connlabel bitmap (CTA_LABELS) as the kernel
	// stores it, an array of native-endian longs: on little-endian hosts
	// label n is Labels[n/8]&(1<<(n%8)). It is the layout
	// Verdict.WithCtLabels takes. Sent only when a label is set.
	Labels [16]byte
	// Use is the entry's reference count (CTA_USE). ctnetlink dumps carry
	// it, but ctnetlink_glue_build does not, so it is absent from queued
	// packets.
	Use uint32

	// Present records which fields the kernel sent.
	Present CtField

	attrs []byte // the CTA_* attributes, for Attribute
}

// CtField is a set of Conntrack fields, one bit per field. Conntrack.Present
// holds the fields the kernel sent.
type CtField uint32

// Conntrack fields.
const (
	CtFieldOriginal CtField = 1 << iota // Conntrack.Original (CTA_TUPLE_ORIG)
	CtFieldReply                        // Conntrack.Reply (CTA_TUPLE_REPLY)
	CtFieldZone                         // Conntrack.Zone (CTA_ZONE)
	CtFieldID                           // Conntrack.ID (CTA_ID)
	CtFieldStatus                       // Conntrack.Status (CTA_STATUS)
	CtFieldTimeout                      // Conntrack.Timeout (CTA_TIMEOUT)
	CtFieldTCPState                     // Conntrack.TCPState (CTA_PROTOINFO_TCP_STATE)
	CtFieldHelper                       // Conntrack.Helper (CTA_HELP_NAME)
	CtFieldSecCtx                       // Conntrack.SecCtx (CTA_SECCTX_NAME)
	CtFieldMark                         // Conntrack.Mark (CTA_MARK)
	CtFieldLabels                       // Conntrack.Labels (CTA_LABELS)
	CtFieldUse                          // Conntrack.Use (CTA_USE)
)

var ctFieldNames = [...]string{
	"original", "reply", "zone", "id", "status", "timeout",
	"tcp-state", "helper", "secctx", "mark", "labels", "use",
}

// String lists the fields in the set, separated by commas.
func (f CtField) String() string {
	var b strings.Builder
	for i, name := range ctFieldNames {
		if f&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(name)
		}
	}
	if rest := f &^ (1<<len(ctFieldNames) - 1); rest != 0 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString("0x" + strconv.FormatUint(uint64(rest), 16))
	}
	return b.String()
}

// Has reports whether the kernel sent all the fields in f.
func (ct *Conntrack) Has(f CtField) bool { return ct.Present&f == f }

// Attribute returns the raw value of the top-level CTA_* attribute typ of
// the entry (enum ctattr_type), e.g. CTA_COUNTERS_ORIG (9) or
// CTA_TUPLE_MASTER (14), which have no field in Conntrack. The value
// aliases the decoded bytes.
func (ct *Conntrack) Attribute(typ uint16) ([]byte, bool) {
	a := wire.NewAttrs(ct.attrs)
	for a.Next() {
		if a.Type() == typ {
			return a.Data(), true
		}
	}
	return nil, false
}

// DecodeConntrack decodes the packet's conntrack entry (Packet.Conntrack,
// NFQA_CT) into ct, overwriting all of ct. It does not allocate; the slices
// in ct alias the packet's. It returns ErrNoConntrack when the packet has
// no conntrack entry, and an error wrapping ErrMalformed that names the
// attribute when the entry cannot be decoded. On error ct is zeroed.
//
// On kernels without CONFIG_NETFILTER_NETLINK_GLUE_CT the kernel never
// sends NFQA_CT, and Open refuses Config.Conntrack with ErrNotSupported.
func (p *Packet) DecodeConntrack(ct *Conntrack) error {
	if p.Conntrack == nil && !p.Has(AttrConntrack) {
		*ct = Conntrack{}
		return ErrNoConntrack
	}
	return ParseConntrack(p.Conntrack, ct)
}

// ParseConntrack decodes b, the value of an NFQA_CT attribute (nested CTA_*
// attributes in the ctnetlink format, as in Packet.Conntrack), into ct,
// overwriting all of ct. It never panics and does not allocate on success;
// the slices in ct alias b.
//
// Unknown attributes are ignored. An attribute shorter than its type is an
// error; longer ones are accepted and the extra bytes ignored, as the
// kernel's netlink policies do. Errors wrap ErrMalformed and name the
// attribute; on error ct is zeroed.
func ParseConntrack(b []byte, ct *Conntrack) error {
	*ct = Conntrack{attrs: b}
	if err := ct.parse(b); err != nil {
		*ct = Conntrack{}
		return fmt.Errorf("%w: conntrack: %w", errMalformed, err)
	}
	return nil
}

func (ct *Conntrack) parse(b []byte) error {
	a := wire.NewAttrs(b)
	for a.Next() {
		d := a.Data()
		var err error
		switch a.Type() {
		case wire.CTATupleOrig:
			if err = ct.Original.parse(d); err != nil {
				return fmt.Errorf("CTA_TUPLE_ORIG: %w", err)
			}
			ct.Present |= CtFieldOriginal
		case wire.CTATupleReply:
			if err = ct.Reply.parse(d); err != nil {
				return fmt.Errorf("CTA_TUPLE_REPLY: %w", err)
			}
			ct.Present |= CtFieldReply
		case wire.CTAZone:
			ct.Zone, err = ctBE16("CTA_ZONE", d)
			ct.Present |= CtFieldZone
		case wire.CTAID:
			ct.ID, err = ctBE32("CTA_ID", d)
			ct.Present |= CtFieldID
		case wire.CTAStatus:
			var v uint32
			v, err = ctBE32("CTA_STATUS", d)
			ct.Status = CtStatus(v)
			ct.Present |= CtFieldStatus
		case wire.CTATimeout:
			ct.Timeout, err = ctBE32("CTA_TIMEOUT", d)
			ct.Present |= CtFieldTimeout
		case wire.CTAProtoInfo:
			if err = ct.parseProtoInfo(d); err != nil {
				return fmt.Errorf("CTA_PROTOINFO: %w", err)
			}
		case wire.CTAHelp:
			var ok bool
			if ct.Helper, ok, err = ctString(d, wire.CTAHelpName); err != nil {
				return fmt.Errorf("CTA_HELP: %w", err)
			}
			if ok {
				ct.Present |= CtFieldHelper
			}
		case wire.CTASecCtx:
			var ok bool
			if ct.SecCtx, ok, err = ctString(d, wire.CTASecCtxName); err != nil {
				return fmt.Errorf("CTA_SECCTX: %w", err)
			}
			if ok {
				ct.Present |= CtFieldSecCtx
			}
		case wire.CTAMark:
			ct.Mark, err = ctBE32("CTA_MARK", d)
			ct.Present |= CtFieldMark
		case wire.CTALabels:
			if len(d) < len(ct.Labels) {
				err = ctShort("CTA_LABELS", len(d), len(ct.Labels))
			}
			copy(ct.Labels[:], d)
			ct.Present |= CtFieldLabels
		case wire.CTAUse:
			ct.Use, err = ctBE32("CTA_USE", d)
			ct.Present |= CtFieldUse
		}
		if err != nil {
			return err
		}
	}
	return a.Err()
}

func (ct *Conntrack) parseProtoInfo(b []byte) error {
	a := wire.NewAttrs(b)
	for a.Next() {
		if a.Type() != wire.CTAProtoInfoTCP {
			continue // DCCP and SCTP state are not decoded
		}
		t := wire.NewAttrs(a.Data())
		for t.Next() {
			if t.Type() != wire.CTAProtoInfoTCPState {
				continue
			}
			if len(t.Data()) < 1 {
				return fmt.Errorf("CTA_PROTOINFO_TCP: %w", ctShort("CTA_PROTOINFO_TCP_STATE", 0, 1))
			}
			ct.TCPState = TCPState(t.Data()[0])
			ct.Present |= CtFieldTCPState
		}
		if err := t.Err(); err != nil {
			return fmt.Errorf("CTA_PROTOINFO_TCP: %w", err)
		}
	}
	return a.Err()
}

// ctString returns the string attribute typ of the nested attributes b,
// without its NUL terminator, and whether b holds it.
func ctString(b []byte, typ uint16) (s []byte, ok bool, err error) {
	a := wire.NewAttrs(b)
	for a.Next() {
		if a.Type() == typ {
			s, ok = trimNUL(a.Data()), true
		}
	}
	if err := a.Err(); err != nil {
		return nil, false, err
	}
	return s, ok, nil
}

func ctBE32(name string, d []byte) (uint32, error) {
	v, ok := wire.BE32(d)
	if !ok {
		return 0, ctShort(name, len(d), 4)
	}
	return v, nil
}

func ctBE16(name string, d []byte) (uint16, error) {
	v, ok := wire.BE16(d)
	if !ok {
		return 0, ctShort(name, len(d), 2)
	}
	return v, nil
}

func ctShort(name string, got, want int) error {
	return fmt.Errorf("%s: %d bytes, want %d", name, got, want)
}

// Tuple is one direction of a conntrack entry: addresses, layer 4 protocol
// and ports or ICMP identity (CTA_TUPLE_ORIG or CTA_TUPLE_REPLY).
//
// For TCP, UDP, UDP-Lite, SCTP and DCCP the ports are set; GRE keys are
// sent as ports too. For ICMP and ICMPv6 the ICMP fields are set: the
// echo identifier, and the type and code of the request.
type Tuple struct {
	Src, Dst netip.Addr // CTA_TUPLE_IP: CTA_IP_V4_SRC/DST or CTA_IP_V6_SRC/DST
	Proto    uint8      // IP protocol number, e.g. 6 for TCP (CTA_PROTO_NUM)
	SrcPort  uint16     // CTA_PROTO_SRC_PORT
	DstPort  uint16     // CTA_PROTO_DST_PORT
	ICMPID   uint16     // CTA_PROTO_ICMP_ID or CTA_PROTO_ICMPV6_ID
	ICMPType uint8      // CTA_PROTO_ICMP_TYPE or CTA_PROTO_ICMPV6_TYPE
	ICMPCode uint8      // CTA_PROTO_ICMP_CODE or CTA_PROTO_ICMPV6_CODE
	// Zone is the conntrack zone of this direction when the zone applies
	// to one direction only, otherwise 0 (CTA_TUPLE_ZONE).
	Zone uint16
}

// IP protocol numbers with names in Tuple.String.
const (
	protoICMP    = 1
	protoTCP     = 6
	protoUDP     = 17
	protoDCCP    = 33
	protoGRE     = 47
	protoICMPv6  = 58
	protoSCTP    = 132
	protoUDPLite = 136
)

// String formats the tuple as "tcp 192.0.2.1:40000 -> 192.0.2.2:80",
// "udp [2001:db8::1]:53 -> [2001:db8::2]:5353" or
// "icmp 192.0.2.1 -> 192.0.2.2 type 8 code 0 id 7", followed by
// " zone N" for a non-zero zone.
func (t Tuple) String() string {
	var b strings.Builder
	switch t.Proto {
	case protoICMP:
		b.WriteString("icmp")
	case protoTCP:
		b.WriteString("tcp")
	case protoUDP:
		b.WriteString("udp")
	case protoDCCP:
		b.WriteString("dccp")
	case protoGRE:
		b.WriteString("gre")
	case protoICMPv6:
		b.WriteString("icmpv6")
	case protoSCTP:
		b.WriteString("sctp")
	case protoUDPLite:
		b.WriteString("udplite")
	default:
		b.WriteString("proto " + strconv.Itoa(int(t.Proto)))
	}
	b.WriteByte(' ')
	switch {
	case t.Proto == protoICMP || t.Proto == protoICMPv6:
		b.WriteString(t.Src.String() + " -> " + t.Dst.String())
		fmt.Fprintf(&b, " type %d code %d id %d", t.ICMPType, t.ICMPCode, t.ICMPID)
	case t.SrcPort != 0 || t.DstPort != 0 || t.Proto == protoTCP || t.Proto == protoUDP ||
		t.Proto == protoDCCP || t.Proto == protoSCTP || t.Proto == protoUDPLite:
		b.WriteString(netip.AddrPortFrom(t.Src, t.SrcPort).String() + " -> " +
			netip.AddrPortFrom(t.Dst, t.DstPort).String())
	default:
		b.WriteString(t.Src.String() + " -> " + t.Dst.String())
	}
	if t.Zone != 0 {
		b.WriteString(" zone " + strconv.Itoa(int(t.Zone)))
	}
	return b.String()
}

func (t *Tuple) parse(b []byte) error {
	a := wire.NewAttrs(b)
	for a.Next() {
		var err error
		switch a.Type() {
		case wire.CTATupleIP:
			if err = t.parseIP(a.Data()); err != nil {
				return fmt.Errorf("CTA_TUPLE_IP: %w", err)
			}
		case wire.CTATupleProto:
			if err = t.parseProto(a.Data()); err != nil {
				return fmt.Errorf("CTA_TUPLE_PROTO: %w", err)
			}
		case wire.CTATupleZone:
			if t.Zone, err = ctBE16("CTA_TUPLE_ZONE", a.Data()); err != nil {
				return err
			}
		}
	}
	return a.Err()
}

func (t *Tuple) parseIP(b []byte) error {
	a := wire.NewAttrs(b)
	for a.Next() {
		d := a.Data()
		switch a.Type() {
		case wire.CTAIPv4Src, wire.CTAIPv4Dst:
			if len(d) < 4 {
				name := "CTA_IP_V4_SRC"
				if a.Type() == wire.CTAIPv4Dst {
					name = "CTA_IP_V4_DST"
				}
				return ctShort(name, len(d), 4)
			}
			ip := netip.AddrFrom4([4]byte(d[:4]))
			if a.Type() == wire.CTAIPv4Src {
				t.Src = ip
			} else {
				t.Dst = ip
			}
		case wire.CTAIPv6Src, wire.CTAIPv6Dst:
			if len(d) < 16 {
				name := "CTA_IP_V6_SRC"
				if a.Type() == wire.CTAIPv6Dst {
					name = "CTA_IP_V6_DST"
				}
				return ctShort(name, len(d), 16)
			}
			ip := netip.AddrFrom16([16]byte(d[:16]))
			if a.Type() == wire.CTAIPv6Src {
				t.Src = ip
			} else {
				t.Dst = ip
			}
		}
	}
	return a.Err()
}

func (t *Tuple) parseProto(b []byte) error {
	a := wire.NewAttrs(b)
	for a.Next() {
		d := a.Data()
		var err error
		switch a.Type() {
		case wire.CTAProtoNum:
			t.Proto, err = ctU8("CTA_PROTO_NUM", d)
		case wire.CTAProtoSrcPort:
			t.SrcPort, err = ctBE16("CTA_PROTO_SRC_PORT", d)
		case wire.CTAProtoDstPort:
			t.DstPort, err = ctBE16("CTA_PROTO_DST_PORT", d)
		case wire.CTAProtoICMPID:
			t.ICMPID, err = ctBE16("CTA_PROTO_ICMP_ID", d)
		case wire.CTAProtoICMPType:
			t.ICMPType, err = ctU8("CTA_PROTO_ICMP_TYPE", d)
		case wire.CTAProtoICMPCode:
			t.ICMPCode, err = ctU8("CTA_PROTO_ICMP_CODE", d)
		case wire.CTAProtoICMPv6ID:
			t.ICMPID, err = ctBE16("CTA_PROTO_ICMPV6_ID", d)
		case wire.CTAProtoICMPv6Type:
			t.ICMPType, err = ctU8("CTA_PROTO_ICMPV6_TYPE", d)
		case wire.CTAProtoICMPv6Code:
			t.ICMPCode, err = ctU8("CTA_PROTO_ICMPV6_CODE", d)
		}
		if err != nil {
			return err
		}
	}
	return a.Err()
}

func ctU8(name string, d []byte) (uint8, error) {
	if len(d) < 1 {
		return 0, ctShort(name, 0, 1)
	}
	return d[0], nil
}

// CtStatus is the status bit set of a conntrack entry (enum
// ip_conntrack_status, include/uapi/linux/netfilter/nf_conntrack_common.h).
type CtStatus uint32

// Conntrack status bits.
const (
	CtStatusExpected     CtStatus = 1 << 0  // IPS_EXPECTED: an expected connection (e.g. FTP data)
	CtStatusSeenReply    CtStatus = 1 << 1  // IPS_SEEN_REPLY: packets seen in both directions
	CtStatusAssured      CtStatus = 1 << 2  // IPS_ASSURED: never early-dropped
	CtStatusConfirmed    CtStatus = 1 << 3  // IPS_CONFIRMED: the first packet has left the box
	CtStatusSrcNAT       CtStatus = 1 << 4  // IPS_SRC_NAT: source NAT in the original direction
	CtStatusDstNAT       CtStatus = 1 << 5  // IPS_DST_NAT: destination NAT in the original direction
	CtStatusSeqAdjust    CtStatus = 1 << 6  // IPS_SEQ_ADJUST: TCP sequence numbers are adjusted
	CtStatusSrcNATDone   CtStatus = 1 << 7  // IPS_SRC_NAT_DONE: source NAT set up
	CtStatusDstNATDone   CtStatus = 1 << 8  // IPS_DST_NAT_DONE: destination NAT set up
	CtStatusDying        CtStatus = 1 << 9  // IPS_DYING: removed from the table
	CtStatusFixedTimeout CtStatus = 1 << 10 // IPS_FIXED_TIMEOUT: the timeout does not change
	CtStatusTemplate     CtStatus = 1 << 11 // IPS_TEMPLATE: a template entry
	CtStatusUntracked    CtStatus = 1 << 12 // IPS_UNTRACKED: obsolete, no longer set by the kernel
	CtStatusHelper       CtStatus = 1 << 13 // IPS_HELPER: helper attached explicitly (ruleset or ctnetlink)
	CtStatusOffload      CtStatus = 1 << 14 // IPS_OFFLOAD: offloaded to a flow table
	CtStatusHWOffload    CtStatus = 1 << 15 // IPS_HW_OFFLOAD: offloaded to hardware
)

var ctStatusNames = [...]string{
	"EXPECTED", "SEEN_REPLY", "ASSURED", "CONFIRMED", "SRC_NAT", "DST_NAT",
	"SEQ_ADJUST", "SRC_NAT_DONE", "DST_NAT_DONE", "DYING", "FIXED_TIMEOUT",
	"TEMPLATE", "UNTRACKED", "HELPER", "OFFLOAD", "HW_OFFLOAD",
}

// Has reports whether all the bits of f are set.
func (s CtStatus) Has(f CtStatus) bool { return s&f == f }

// String lists the set bits by their kernel names without the IPS_ prefix,
// separated by "|", e.g. "SEEN_REPLY|ASSURED|CONFIRMED"; unknown bits
// follow in hexadecimal. The empty set is "0".
func (s CtStatus) String() string {
	if s == 0 {
		return "0"
	}
	var b strings.Builder
	for i, name := range ctStatusNames {
		if s&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteByte('|')
			}
			b.WriteString(name)
		}
	}
	if rest := s &^ (1<<len(ctStatusNames) - 1); rest != 0 {
		if b.Len() > 0 {
			b.WriteByte('|')
		}
		b.WriteString("0x" + strconv.FormatUint(uint64(rest), 16))
	}
	return b.String()
}

// TCPState is the state of a tracked TCP connection (enum tcp_conntrack,
// include/uapi/linux/netfilter/nf_conntrack_tcp.h).
type TCPState uint8

// TCP conntrack states.
const (
	TCPStateNone        TCPState = 0 // TCP_CONNTRACK_NONE
	TCPStateSynSent     TCPState = 1 // TCP_CONNTRACK_SYN_SENT
	TCPStateSynRecv     TCPState = 2 // TCP_CONNTRACK_SYN_RECV
	TCPStateEstablished TCPState = 3 // TCP_CONNTRACK_ESTABLISHED
	TCPStateFinWait     TCPState = 4 // TCP_CONNTRACK_FIN_WAIT
	TCPStateCloseWait   TCPState = 5 // TCP_CONNTRACK_CLOSE_WAIT
	TCPStateLastAck     TCPState = 6 // TCP_CONNTRACK_LAST_ACK
	TCPStateTimeWait    TCPState = 7 // TCP_CONNTRACK_TIME_WAIT
	TCPStateClose       TCPState = 8 // TCP_CONNTRACK_CLOSE
	// TCPStateSynSent2: simultaneous open (TCP_CONNTRACK_SYN_SENT2, which
	// took the value of the obsolete TCP_CONNTRACK_LISTEN).
	TCPStateSynSent2 TCPState = 9
)

var tcpStateNames = [...]string{
	"NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT",
	"CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2",
}

// String returns the state's name as conntrack(8) prints it, e.g.
// "ESTABLISHED".
func (s TCPState) String() string {
	if int(s) < len(tcpStateNames) {
		return tcpStateNames[s]
	}
	return "tcpstate(" + strconv.Itoa(int(s)) + ")"
}
