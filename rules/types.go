package rules

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Family is an address family: of a table ([Config.Family]), or the one a
// [Match] is restricted to ([Match.Family]). Its names are the nftables ones.
type Family uint8

const (
	// FamilyInet covers IPv4 and IPv6. As a table family it is the nft "inet"
	// family; in a Match it means no restriction.
	FamilyInet Family = iota
	// FamilyIPv4 is IPv4 only (nft "ip").
	FamilyIPv4
	// FamilyIPv6 is IPv6 only (nft "ip6").
	FamilyIPv6
)

// String returns the nft name of the family: "inet", "ip" or "ip6".
func (f Family) String() string {
	switch f {
	case FamilyInet:
		return "inet"
	case FamilyIPv4:
		return "ip"
	case FamilyIPv6:
		return "ip6"
	}
	return "Family(" + strconv.Itoa(int(f)) + ")"
}

// Hook is the netfilter hook a base chain is attached to. The zero value is
// not a hook: a [Chain] must name one.
type Hook uint8

const (
	// HookPrerouting sees every incoming packet before routing.
	HookPrerouting Hook = iota + 1
	// HookInput sees packets addressed to this host.
	HookInput
	// HookForward sees packets routed through this host.
	HookForward
	// HookOutput sees packets sent by local processes.
	HookOutput
	// HookPostrouting sees every outgoing packet after routing.
	HookPostrouting
)

// String returns the nft name of the hook, e.g. "input".
func (h Hook) String() string {
	switch h {
	case HookPrerouting:
		return "prerouting"
	case HookInput:
		return "input"
	case HookForward:
		return "forward"
	case HookOutput:
		return "output"
	case HookPostrouting:
		return "postrouting"
	}
	return "Hook(" + strconv.Itoa(int(h)) + ")"
}

// Standard base chain priorities, as named by nft. Lower runs first.
const (
	PriorityRaw      int32 = -300
	PriorityMangle   int32 = -150
	PriorityDstNAT   int32 = -100
	PriorityFilter   int32 = 0
	PrioritySecurity int32 = 50
	PrioritySrcNAT   int32 = 100
)

// Backend is the kernel mechanism the queue action of a rule is built with.
type Backend uint8

const (
	// BackendAuto lets [Open] probe the kernel: the nft queue expression if
	// the kernel accepts it, else the xtables NFQUEUE target.
	BackendAuto Backend = iota
	// BackendQueueExpr is the nftables "queue" expression (kernel module
	// nft_queue, Linux 3.14 and later).
	BackendQueueExpr
	// BackendXtTarget is the xtables NFQUEUE target, revision 3, carried in
	// an nftables rule by nft_compat, as iptables-nft does.
	BackendXtTarget
)

// String returns "auto", "nft-queue" or "xt-NFQUEUE".
func (b Backend) String() string {
	switch b {
	case BackendAuto:
		return "auto"
	case BackendQueueExpr:
		return "nft-queue"
	case BackendXtTarget:
		return "xt-NFQUEUE"
	}
	return "Backend(" + strconv.Itoa(int(b)) + ")"
}

// L4Proto is a layer 4 protocol number as in the IP header (nft "meta
// l4proto": the protocol after any IPv6 extension headers). The zero value
// means any protocol.
type L4Proto uint8

// Layer 4 protocols with names. Any other number can be used too.
const (
	ProtoAny     L4Proto = 0
	ProtoICMP    L4Proto = 1
	ProtoTCP     L4Proto = 6
	ProtoUDP     L4Proto = 17
	ProtoICMPv6  L4Proto = 58
	ProtoSCTP    L4Proto = 132
	ProtoUDPLite L4Proto = 136
)

var protoNames = map[L4Proto]string{
	ProtoICMP:    "icmp",
	ProtoTCP:     "tcp",
	ProtoUDP:     "udp",
	ProtoICMPv6:  "icmpv6",
	ProtoSCTP:    "sctp",
	ProtoUDPLite: "udplite",
}

// String returns the nft name of the protocol ("tcp", "icmpv6", ...),
// "any" for ProtoAny, or the number.
func (p L4Proto) String() string {
	if p == ProtoAny {
		return "any"
	}
	if n, ok := protoNames[p]; ok {
		return n
	}
	return strconv.Itoa(int(p))
}

// hasPorts reports whether the protocol starts with a 16-bit source port
// followed by a 16-bit destination port.
func (p L4Proto) hasPorts() bool {
	switch p {
	case ProtoTCP, ProtoUDP, ProtoSCTP, ProtoUDPLite:
		return true
	}
	return false
}

// Op is the comparison of a [MarkMatch]. The zero value disables the match.
type Op uint8

const (
	// OpNone means the match is not used.
	OpNone Op = iota
	// OpEq matches when the masked value equals [MarkMatch.Value].
	OpEq
	// OpNeq matches when the masked value differs from [MarkMatch.Value].
	OpNeq
)

// String returns "none", "==" or "!=".
func (o Op) String() string {
	switch o {
	case OpNone:
		return "none"
	case OpEq:
		return "=="
	case OpNeq:
		return "!="
	}
	return "Op(" + strconv.Itoa(int(o)) + ")"
}

// MarkMatch compares a 32-bit mark (the packet mark or the connection mark)
// under a mask. The zero value matches every packet.
type MarkMatch struct {
	// Op is the comparison; OpNone disables the match.
	Op Op
	// Value is compared with the masked mark.
	Value uint32
	// Mask selects the bits compared; zero means all 32 bits.
	Mask uint32
}

func (m MarkMatch) mask() uint32 {
	if m.Mask == 0 {
		return 0xffffffff
	}
	return m.Mask
}

// String returns the comparison in nft syntax, e.g. "!= 0x1" or
// "and 0xff00 == 0x100", or "" when the match is off.
func (m MarkMatch) String() string {
	if m.Op == OpNone {
		return ""
	}
	s := m.Op.String() + " 0x" + strconv.FormatUint(uint64(m.Value), 16)
	if m.mask() != 0xffffffff {
		s = "and 0x" + strconv.FormatUint(uint64(m.Mask), 16) + " " + s
	}
	return s
}

func (m MarkMatch) validate(what string) error {
	switch m.Op {
	case OpNone:
		if m.Value != 0 || m.Mask != 0 {
			return fmt.Errorf("%w: %s has a value but no operator", ErrInvalidRule, what)
		}
	case OpEq, OpNeq:
		if m.Value&^m.mask() != 0 {
			return fmt.Errorf("%w: %s value 0x%x has bits outside mask 0x%x", ErrInvalidRule, what, m.Value, m.mask())
		}
	default:
		return fmt.Errorf("%w: %s: unknown operator %v", ErrInvalidRule, what, m.Op)
	}
	return nil
}

// PortRange is an inclusive range of ports. The zero value matches any port;
// Last == 0 means the single port First.
type PortRange struct {
	First uint16
	Last  uint16
}

// Port returns the PortRange of the single port p.
func Port(p uint16) PortRange { return PortRange{First: p, Last: p} }

// IsZero reports whether the range matches any port (is not used).
func (r PortRange) IsZero() bool { return r.First == 0 && r.Last == 0 }

func (r PortRange) last() uint16 {
	if r.Last == 0 {
		return r.First
	}
	return r.Last
}

// String returns "53" or "1000-2000", or "" for the zero value.
func (r PortRange) String() string {
	if r.IsZero() {
		return ""
	}
	if r.last() == r.First {
		return strconv.Itoa(int(r.First))
	}
	return strconv.Itoa(int(r.First)) + "-" + strconv.Itoa(int(r.last()))
}

func (r PortRange) validate(what string) error {
	if r.IsZero() {
		return nil
	}
	if r.First == 0 {
		return fmt.Errorf("%w: %s range %d-%d starts at port 0", ErrInvalidRule, what, r.First, r.Last)
	}
	if r.last() < r.First {
		return fmt.Errorf("%w: %s range %d-%d is reversed", ErrInvalidRule, what, r.First, r.Last)
	}
	return nil
}

// Match selects packets. Every part that is set must match; the zero value
// matches every packet.
type Match struct {
	// Family restricts the match to IPv4 or IPv6 (nft "meta nfproto").
	// FamilyInet means no restriction, unless an address implies one.
	Family Family
	// Proto is the layer 4 protocol (nft "meta l4proto"); ProtoAny means
	// any. Port matches need TCP, UDP, UDP-Lite or SCTP.
	Proto L4Proto
	// SrcAddr and DstAddr match the source and destination address against
	// a prefix (a single address is a full-length prefix). The zero Prefix
	// means any address. An address implies its family.
	SrcAddr netip.Prefix
	DstAddr netip.Prefix
	// SrcPort and DstPort match the transport ports; zero means any.
	SrcPort PortRange
	DstPort PortRange
	// InIface and OutIface match the input and output interface name
	// (nft "iifname", "oifname"); a trailing '*' matches a prefix. Empty
	// means any interface.
	InIface  string
	OutIface string
	// Mark matches the packet mark (nft "meta mark").
	Mark MarkMatch
	// CtMark matches the connection mark (nft "ct mark"); it makes the
	// namespace track connections.
	CtMark MarkMatch
}

// family returns the family the match is restricted to, from Family and
// the addresses; an inconsistency is an error.
func (m Match) family() (Family, error) {
	f := m.Family
	if f > FamilyIPv6 {
		return 0, fmt.Errorf("%w: unknown family %v", ErrInvalidRule, f)
	}
	for _, a := range []struct {
		name string
		p    netip.Prefix
	}{{"source address", m.SrcAddr}, {"destination address", m.DstAddr}} {
		if a.p == (netip.Prefix{}) {
			continue
		}
		if !a.p.IsValid() {
			return 0, fmt.Errorf("%w: invalid %s prefix %v", ErrInvalidRule, a.name, a.p)
		}
		af := FamilyIPv6
		if a.p.Addr().Is4() {
			af = FamilyIPv4
		}
		if f != FamilyInet && f != af {
			return 0, fmt.Errorf("%w: %s %v is not %v", ErrInvalidRule, a.name, a.p, f)
		}
		f = af
	}
	return f, nil
}

// installFamily is the family the rule can apply to: family() narrowed by
// ICMP (IPv4 only) and ICMPv6 (IPv6 only). It decides which tables of a
// split ip/ip6 pair receive the rule.
func (m Match) installFamily() (Family, error) {
	f, err := m.family()
	if err != nil {
		return 0, err
	}
	var pf Family
	switch m.Proto {
	case ProtoICMP:
		pf = FamilyIPv4
	case ProtoICMPv6:
		pf = FamilyIPv6
	default:
		return f, nil
	}
	if f != FamilyInet && f != pf {
		return 0, fmt.Errorf("%w: protocol %v does not exist in %v", ErrInvalidRule, m.Proto, f)
	}
	return pf, nil
}

// Validate reports whether the match can be installed, with an error that
// matches [ErrInvalidRule] if not.
func (m Match) Validate() error {
	if _, err := m.installFamily(); err != nil {
		return err
	}
	if !m.SrcPort.IsZero() || !m.DstPort.IsZero() {
		if m.Proto == ProtoAny {
			return fmt.Errorf("%w: a port match needs a protocol (tcp, udp, udplite or sctp)", ErrInvalidRule)
		}
		if !m.Proto.hasPorts() {
			return fmt.Errorf("%w: protocol %v has no ports", ErrInvalidRule, m.Proto)
		}
	}
	if err := m.SrcPort.validate("source port"); err != nil {
		return err
	}
	if err := m.DstPort.validate("destination port"); err != nil {
		return err
	}
	if err := validIface(m.InIface); err != nil {
		return fmt.Errorf("%w: input interface: %v", ErrInvalidRule, err)
	}
	if err := validIface(m.OutIface); err != nil {
		return fmt.Errorf("%w: output interface: %v", ErrInvalidRule, err)
	}
	if err := m.Mark.validate("mark"); err != nil {
		return err
	}
	return m.CtMark.validate("ct mark")
}

// ifNameSize is IFNAMSIZ: interface names have at most 15 bytes.
const ifNameSize = 16

func validIface(name string) error {
	if name == "" {
		return nil
	}
	base := strings.TrimSuffix(name, "*")
	if base == "" {
		return fmt.Errorf("%q matches every interface; leave it empty instead", name)
	}
	if len(base) >= ifNameSize {
		return fmt.Errorf("%q is longer than %d bytes", name, ifNameSize-1)
	}
	if strings.ContainsAny(base, "\x00/*") || strings.ContainsFunc(base, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("%q is not a valid interface name", name)
	}
	return nil
}

func addrKeyword(p netip.Prefix) string {
	if p.Addr().Is4() {
		return "ip"
	}
	return "ip6"
}

func prefixString(p netip.Prefix) string {
	if p.Bits() == p.Addr().BitLen() {
		return p.Addr().String()
	}
	return p.String()
}

// String returns the match in the syntax [ParseMatch] reads, e.g.
// "ip saddr 10.0.0.1 udp dport 53"; "" for the zero Match.
func (m Match) String() string {
	var parts []string
	if m.Family != FamilyInet && m.SrcAddr == (netip.Prefix{}) && m.DstAddr == (netip.Prefix{}) {
		parts = append(parts, m.Family.String())
	}
	if m.SrcAddr.IsValid() {
		parts = append(parts, addrKeyword(m.SrcAddr), "saddr", prefixString(m.SrcAddr))
	}
	if m.DstAddr.IsValid() {
		parts = append(parts, addrKeyword(m.DstAddr), "daddr", prefixString(m.DstAddr))
	}
	if m.Proto != ProtoAny {
		_, named := protoNames[m.Proto]
		switch {
		case !named:
			parts = append(parts, "meta", "l4proto", m.Proto.String())
		case m.SrcPort.IsZero() && m.DstPort.IsZero():
			parts = append(parts, m.Proto.String())
		}
	}
	if !m.SrcPort.IsZero() {
		parts = append(parts, m.Proto.String(), "sport", m.SrcPort.String())
	}
	if !m.DstPort.IsZero() {
		parts = append(parts, m.Proto.String(), "dport", m.DstPort.String())
	}
	if m.InIface != "" {
		parts = append(parts, "iifname", m.InIface)
	}
	if m.OutIface != "" {
		parts = append(parts, "oifname", m.OutIface)
	}
	if m.Mark.Op != OpNone {
		parts = append(parts, "meta", "mark", m.Mark.String())
	}
	if m.CtMark.Op != OpNone {
		parts = append(parts, "ct", "mark", m.CtMark.String())
	}
	return strings.Join(parts, " ")
}

// QueueFlags are the flags of a queue action. Their bits are those of both
// NFQ_FLAG_* (xt_NFQUEUE) and NFT_QUEUE_FLAG_* (nft_queue).
type QueueFlags uint16

const (
	// QueueBypass accepts the packet instead of dropping it when no program
	// is bound to the queue ("--queue-bypass", nft "bypass").
	QueueBypass QueueFlags = 0x01
	// QueueFanout picks the queue of a range by the CPU that handles the
	// packet instead of by a hash of the addresses ("--queue-cpu-fanout",
	// nft "fanout"). It needs a range.
	QueueFanout QueueFlags = 0x02

	queueFlagMask = QueueBypass | QueueFanout
)

// String returns the set flags separated by commas, e.g. "bypass,fanout",
// or "none".
func (f QueueFlags) String() string {
	if f == 0 {
		return "none"
	}
	var s []string
	if f&QueueBypass != 0 {
		s = append(s, "bypass")
	}
	if f&QueueFanout != 0 {
		s = append(s, "fanout")
	}
	if rest := f &^ queueFlagMask; rest != 0 {
		s = append(s, "0x"+strconv.FormatUint(uint64(rest), 16))
	}
	return strings.Join(s, ",")
}

// Queue is the queue action: send the packet to queue Num, or balance it
// over the Total queues Num .. Num+Total-1.
type Queue struct {
	// Num is the (first) queue number.
	Num uint16
	// Total is the number of queues in the range; 0 and 1 both mean the
	// single queue Num.
	Total uint16
	// Flags are QueueBypass and QueueFanout.
	Flags QueueFlags
}

func (q Queue) total() uint16 {
	if q.Total == 0 {
		return 1
	}
	return q.Total
}

// Validate reports whether the action can be installed, with an error that
// matches [ErrInvalidRule] if not.
func (q Queue) Validate() error {
	if q.Flags&^queueFlagMask != 0 {
		return fmt.Errorf("%w: unknown queue flags %v", ErrInvalidRule, q.Flags)
	}
	if int(q.Num)+int(q.total())-1 > 0xffff {
		return fmt.Errorf("%w: queue range %d-%d goes beyond 65535", ErrInvalidRule, q.Num, int(q.Num)+int(q.total())-1)
	}
	if q.Flags&QueueFanout != 0 && q.total() < 2 {
		return fmt.Errorf("%w: fanout needs a range of at least two queues", ErrInvalidRule)
	}
	return nil
}

// String returns the action in the syntax [ParseRule] reads, e.g.
// "queue num 3 bypass" or "queue num 0-3 fanout".
func (q Queue) String() string {
	s := "queue num " + strconv.Itoa(int(q.Num))
	if q.total() > 1 {
		s += "-" + strconv.Itoa(int(q.Num)+int(q.total())-1)
	}
	if q.Flags&QueueBypass != 0 {
		s += " bypass"
	}
	if q.Flags&QueueFanout != 0 {
		s += " fanout"
	}
	return s
}

// Action is what a rule does with a matching packet. The zero value queues.
type Action uint8

const (
	// ActionQueue sends the packet to the queue(s) of [Rule.Queue].
	ActionQueue Action = iota
	// ActionAccept accepts the packet in this chain (nft "accept"); later
	// chains of the same hook still see it.
	ActionAccept
	// ActionDrop drops the packet.
	ActionDrop
	// ActionSaveMark copies the packet mark into the connection mark (nft
	// "ct mark set meta mark", iptables "CONNMARK --save-mark") and goes on
	// with the next rule.
	ActionSaveMark
	// ActionRestoreMark copies the connection mark into the packet mark (nft
	// "meta mark set ct mark", iptables "CONNMARK --restore-mark") and goes on
	// with the next rule.
	ActionRestoreMark
)

// String returns "queue", "accept", "drop", "save-mark" or "restore-mark".
func (a Action) String() string {
	switch a {
	case ActionQueue:
		return "queue"
	case ActionAccept:
		return "accept"
	case ActionDrop:
		return "drop"
	case ActionSaveMark:
		return "save-mark"
	case ActionRestoreMark:
		return "restore-mark"
	}
	return "Action(" + strconv.Itoa(int(a)) + ")"
}

// Rule is a match and an action.
type Rule struct {
	// Match selects the packets; the zero Match selects all.
	Match Match
	// Action is what happens to them; the zero value is ActionQueue.
	Action Action
	// Queue is the queue action's target, used when Action is ActionQueue.
	Queue Queue
	// Comment is stored with the rule (nft shows it as its comment);
	// empty means the rule's String. It is cut to 127 bytes.
	Comment string
}

// Validate reports whether the rule can be installed, with an error that
// matches [ErrInvalidRule] if not.
func (r Rule) Validate() error {
	if err := r.Match.Validate(); err != nil {
		return err
	}
	switch r.Action {
	case ActionQueue:
		return r.Queue.Validate()
	case ActionAccept, ActionDrop, ActionSaveMark, ActionRestoreMark:
		if r.Queue != (Queue{}) {
			return fmt.Errorf("%w: a queue is set but the action is %v", ErrInvalidRule, r.Action)
		}
		return nil
	}
	return fmt.Errorf("%w: unknown action %v", ErrInvalidRule, r.Action)
}

// actionString returns the action in the syntax ParseRule reads.
func (r Rule) actionString() string {
	switch r.Action {
	case ActionQueue:
		return r.Queue.String()
	case ActionAccept, ActionDrop:
		return r.Action.String()
	case ActionSaveMark:
		return "ct mark set meta mark"
	case ActionRestoreMark:
		return "meta mark set ct mark"
	}
	return r.Action.String()
}

// String returns the rule in the syntax [ParseRule] reads, e.g.
// "udp dport 53 queue num 0 bypass".
func (r Rule) String() string {
	m := r.Match.String()
	if m == "" {
		return r.actionString()
	}
	return m + " " + r.actionString()
}

// Chain names a base chain of the package's table: the hook it is attached
// to and its priority.
type Chain struct {
	// Name is the chain's name; empty means the hook's name ("input", ...).
	Name string
	// Hook is where the chain sees packets; it must be set.
	Hook Hook
	// Priority orders the chain among the others on the same hook (see
	// PriorityFilter and the other Priority constants); lower runs first.
	Priority int32
}

func (c Chain) name() string {
	if c.Name == "" {
		return c.Hook.String()
	}
	return c.Name
}

// Validate reports whether the chain can be created, with an error that
// matches [ErrInvalidRule] if not.
func (c Chain) Validate() error {
	if c.Hook < HookPrerouting || c.Hook > HookPostrouting {
		return fmt.Errorf("%w: chain needs a hook (prerouting, input, forward, output or postrouting), got %v", ErrInvalidRule, c.Hook)
	}
	n := c.name()
	if len(n) > 255 || strings.ContainsRune(n, 0) {
		return fmt.Errorf("%w: invalid chain name %q", ErrInvalidRule, n)
	}
	return nil
}
