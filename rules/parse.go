package rules

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
)

// ParseMatch reads a match from an nft-like spec string: a sequence of the
// clauses below, separated by white space, all of which must match. The
// empty string matches every packet.
//
//	ip | ip6                          restrict to IPv4 or IPv6
//	ip saddr|daddr ADDR[/LEN]         IPv4 source or destination address or prefix
//	ip6 saddr|daddr ADDR[/LEN]        the same for IPv6
//	ip protocol PROTO                 IPv4 and the protocol
//	tcp | udp | udplite | sctp        the protocol
//	tcp|udp|udplite|sctp sport|dport PORT[-PORT]
//	                                  the protocol and a source or destination port (range)
//	icmp | icmpv6                     the protocol (icmpv6 also spelled ipv6-icmp)
//	meta l4proto PROTO                the protocol by name or number
//	meta nfproto ipv4|ipv6            restrict to IPv4 or IPv6
//	[meta] iifname|oifname NAME       input or output interface; NAME* matches a prefix
//	[meta] mark [and MASK] [==|!=] VALUE
//	                                  the packet mark (== when no operator is given)
//	ct mark [and MASK] [==|!=] VALUE  the connection mark
//	counter                           accepted and ignored: every rule counts
//
// Numbers are decimal or 0x hexadecimal. Anything else, such as negated
// addresses and ports, sets, "th", "icmp type" or other ct keys, is refused
// with a [*SpecError] that names the token and what was expected; the error
// matches [ErrInvalidSpec].
func ParseMatch(spec string) (Match, error) {
	p := newParser(spec, false)
	if err := p.parse(); err != nil {
		return Match{}, err
	}
	return p.rule.Match, nil
}

// ParseRule reads a rule: a match as [ParseMatch] reads it, followed by one
// action, which must come last:
//
//	queue [num N[-M]] [bypass] [fanout]   the queue action (num 0 when omitted);
//	                                      "to" may replace "num", and
//	                                      "flags bypass,fanout" the flag words
//	accept | drop
//	ct mark set [meta] mark               ActionSaveMark
//	[meta] mark set ct mark               ActionRestoreMark
//
// For example "udp dport 53 queue num 0-3 bypass fanout". The String method of
// a Rule returns a string that ParseRule reads back to the same rule (except
// for the Comment).
func ParseRule(spec string) (Rule, error) {
	p := newParser(spec, true)
	if err := p.parse(); err != nil {
		return Rule{}, err
	}
	return p.rule, nil
}

type token struct {
	s   string
	off int
}

type parser struct {
	spec       string
	toks       []token
	i          int
	withAction bool
	rule       Rule
	haveAction bool
}

func newParser(spec string, withAction bool) *parser {
	p := &parser{spec: spec, withAction: withAction}
	start := -1
	for i, r := range spec + " " {
		space := r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f'
		switch {
		case space && start >= 0:
			p.toks = append(p.toks, token{spec[start:i], start})
			start = -1
		case !space && start < 0:
			start = i
		}
	}
	return p
}

func (p *parser) errAt(t token, reason string) error {
	return &SpecError{Spec: p.spec, Offset: t.off, Token: t.s, Reason: reason}
}

func (p *parser) errEnd(reason string) error {
	return &SpecError{Spec: p.spec, Offset: len(p.spec), Reason: reason}
}

func (p *parser) more() bool { return p.i < len(p.toks) }

func (p *parser) peek() (token, bool) {
	if !p.more() {
		return token{off: len(p.spec)}, false
	}
	return p.toks[p.i], true
}

// want consumes the next token, which must exist.
func (p *parser) want(expected string) (token, error) {
	t, ok := p.peek()
	if !ok {
		return t, p.errEnd("missing " + expected)
	}
	p.i++
	return t, nil
}

// accept consumes the next token if it is one of words.
func (p *parser) accept(words ...string) (token, bool) {
	t, ok := p.peek()
	if !ok {
		return t, false
	}
	for _, w := range words {
		if t.s == w {
			p.i++
			return t, true
		}
	}
	return t, false
}

const keywords = "ip, ip6, tcp, udp, udplite, sctp, icmp, icmpv6, meta, iifname, oifname, mark, ct, counter"

func (p *parser) parse() error {
	for p.more() {
		t := p.toks[p.i]
		p.i++
		if p.haveAction {
			return p.errAt(t, "nothing may follow the action")
		}
		var err error
		switch t.s {
		case "ip", "ip6":
			err = p.parseIP(t)
		case "tcp", "udp", "udplite", "sctp":
			err = p.parseL4(t)
		case "icmp", "icmpv6", "ipv6-icmp":
			err = p.parseICMP(t)
		case "meta":
			err = p.parseMeta(t)
		case "iifname", "oifname":
			err = p.parseIface(t)
		case "mark":
			err = p.parseMark(t, false)
		case "ct":
			err = p.parseCt(t)
		case "counter":
		case "accept", "drop", "queue":
			err = p.parseAction(t)
		case "th":
			err = p.errAt(t, "raw transport header matches are not supported; name the protocol, e.g. \"udp dport 53\"")
		case "!=", "==", "eq", "ne":
			err = p.errAt(t, "an operator must follow a field, e.g. \"meta mark != 1\"")
		default:
			if strings.HasPrefix(t.s, "{") {
				err = p.errAt(t, "sets are not supported")
			} else {
				err = p.errAt(t, "unknown keyword; supported: "+keywords)
			}
		}
		if err != nil {
			return err
		}
	}
	if p.withAction && !p.haveAction {
		return p.errEnd("missing action (queue, accept, drop, ct mark set meta mark or meta mark set ct mark)")
	}
	return nil
}

// check reports an inconsistency of the match so far at token t.
func (p *parser) check(t token) error {
	if err := p.rule.Match.Validate(); err != nil {
		return p.errAt(t, strings.TrimPrefix(strings.TrimPrefix(err.Error(), ErrInvalidRule.Error()), ": "))
	}
	return nil
}

func (p *parser) setFamily(t token, f Family) error {
	m := &p.rule.Match
	if m.Family != FamilyInet && m.Family != f {
		return p.errAt(t, "conflicts with the earlier "+m.Family.String()+" restriction")
	}
	m.Family = f
	return p.check(t)
}

func (p *parser) setProto(t token, proto L4Proto) error {
	m := &p.rule.Match
	if m.Proto != ProtoAny && m.Proto != proto {
		return p.errAt(t, "conflicts with the earlier protocol "+m.Proto.String())
	}
	m.Proto = proto
	return p.check(t)
}

func (p *parser) parseIP(kw token) error {
	fam := FamilyIPv4
	if kw.s == "ip6" {
		fam = FamilyIPv6
	}
	t, ok := p.accept("saddr", "daddr", "protocol", "nexthdr", "version", "length", "ttl", "hoplimit", "dscp", "id", "flowlabel")
	if !ok {
		return p.setFamily(kw, fam)
	}
	switch t.s {
	case "saddr", "daddr":
	case "protocol":
		if fam != FamilyIPv4 {
			return p.errAt(t, "ip6 has no protocol field; use \"meta l4proto\"")
		}
		v, err := p.want("protocol")
		if err != nil {
			return err
		}
		proto, err := p.proto(v)
		if err != nil {
			return err
		}
		if err := p.setFamily(kw, fam); err != nil {
			return err
		}
		return p.setProto(v, proto)
	case "nexthdr":
		return p.errAt(t, "not supported; use \"meta l4proto\"")
	default:
		return p.errAt(t, "not supported; only saddr and daddr"+map[bool]string{true: " and protocol", false: ""}[fam == FamilyIPv4]+" can follow "+kw.s)
	}
	v, err := p.want("address")
	if err != nil {
		return err
	}
	if v.s == "!=" {
		return p.errAt(v, "negated address matches are not supported")
	}
	if strings.HasPrefix(v.s, "{") {
		return p.errAt(v, "sets are not supported")
	}
	pfx, err := parsePrefix(v.s)
	if err != nil {
		return p.errAt(v, err.Error())
	}
	if pfx.Addr().Is4() != (fam == FamilyIPv4) {
		return p.errAt(v, "not an "+map[bool]string{true: "IPv4", false: "IPv6"}[fam == FamilyIPv4]+" address")
	}
	m := &p.rule.Match
	dst := &m.SrcAddr
	if t.s == "daddr" {
		dst = &m.DstAddr
	}
	if *dst != (netip.Prefix{}) {
		return p.errAt(t, "given twice")
	}
	*dst = pfx
	return p.setFamily(v, fam)
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, errors.New("not an address prefix (ADDR/LEN)")
		}
		return pfx, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, errors.New("not an IP address")
	}
	if a.Zone() != "" {
		return netip.Prefix{}, errors.New("addresses with a zone are not supported")
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (p *parser) parseL4(kw token) error {
	proto := map[string]L4Proto{"tcp": ProtoTCP, "udp": ProtoUDP, "udplite": ProtoUDPLite, "sctp": ProtoSCTP}[kw.s]
	if err := p.setProto(kw, proto); err != nil {
		return err
	}
	nt, ok := p.peek()
	if !ok {
		return nil
	}
	switch nt.s {
	case "sport", "dport":
		p.i++
	case "flags", "checksum", "sequence", "window", "length", "option", "urgptr", "ackseq", "doff", "vtag":
		return p.errAt(nt, "only sport and dport can follow "+kw.s)
	default:
		return nil
	}
	v, err := p.want("port")
	if err != nil {
		return err
	}
	switch {
	case v.s == "!=":
		return p.errAt(v, "negated port matches are not supported")
	case strings.HasPrefix(v.s, "{"):
		return p.errAt(v, "sets are not supported")
	}
	r, err := parsePorts(v.s)
	if err != nil {
		return p.errAt(v, err.Error())
	}
	m := &p.rule.Match
	dst := &m.SrcPort
	if nt.s == "dport" {
		dst = &m.DstPort
	}
	if !dst.IsZero() {
		return p.errAt(nt, "given twice")
	}
	*dst = r
	return p.check(v)
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 0, 16)
	if err != nil || n == 0 {
		return 0, errors.New("port must be a number from 1 to 65535")
	}
	return uint16(n), nil
}

func parsePorts(s string) (PortRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := parsePort(lo)
	if err != nil {
		return PortRange{}, err
	}
	if !isRange {
		return Port(a), nil
	}
	b, err := parsePort(hi)
	if err != nil {
		return PortRange{}, err
	}
	if b < a {
		return PortRange{}, errors.New("port range is reversed")
	}
	return PortRange{First: a, Last: b}, nil
}

func (p *parser) parseICMP(kw token) error {
	proto := ProtoICMPv6
	if kw.s == "icmp" {
		proto = ProtoICMP
	}
	if err := p.setProto(kw, proto); err != nil {
		return err
	}
	if t, ok := p.accept("type", "code", "id", "sequence", "checksum", "mtu", "gateway"); ok {
		return p.errAt(t, "ICMP field matches are not supported; only the protocol")
	}
	return nil
}

func (p *parser) proto(t token) (L4Proto, error) {
	switch t.s {
	case "ipv6-icmp":
		return ProtoICMPv6, nil
	}
	for n, name := range protoNames {
		if name == t.s {
			return n, nil
		}
	}
	n, err := strconv.ParseUint(t.s, 0, 8)
	if err != nil || n == 0 {
		return 0, p.errAt(t, "protocol must be tcp, udp, udplite, sctp, icmp, icmpv6 or a number from 1 to 255")
	}
	return L4Proto(n), nil
}

func (p *parser) parseMeta(kw token) error {
	t, err := p.want("meta key (l4proto, nfproto, mark, iifname or oifname)")
	if err != nil {
		return err
	}
	switch t.s {
	case "l4proto", "protocol":
		if t.s == "protocol" {
			return p.errAt(t, "meta protocol (the link layer protocol) is not supported; use meta l4proto or meta nfproto")
		}
		v, err := p.want("protocol")
		if err != nil {
			return err
		}
		proto, err := p.proto(v)
		if err != nil {
			return err
		}
		return p.setProto(v, proto)
	case "nfproto":
		v, err := p.want("ipv4 or ipv6")
		if err != nil {
			return err
		}
		switch v.s {
		case "ipv4":
			return p.setFamily(v, FamilyIPv4)
		case "ipv6":
			return p.setFamily(v, FamilyIPv6)
		}
		return p.errAt(v, "nfproto must be ipv4 or ipv6")
	case "mark":
		return p.parseMark(t, false)
	case "iifname", "oifname":
		return p.parseIface(t)
	}
	return p.errAt(t, "unsupported meta key; supported: l4proto, nfproto, mark, iifname, oifname")
}

func (p *parser) parseIface(kw token) error {
	v, err := p.want("interface name")
	if err != nil {
		return err
	}
	if v.s == "!=" {
		return p.errAt(v, "negated interface matches are not supported")
	}
	name := strings.Trim(v.s, "\"")
	if name == "" {
		return p.errAt(v, "empty interface name")
	}
	if err := validIface(name); err != nil {
		return p.errAt(v, err.Error())
	}
	m := &p.rule.Match
	dst := &m.InIface
	if kw.s == "oifname" {
		dst = &m.OutIface
	}
	if *dst != "" {
		return p.errAt(kw, "given twice")
	}
	*dst = name
	return nil
}

func (p *parser) parseCt(kw token) error {
	t, err := p.want("ct key (mark)")
	if err != nil {
		return err
	}
	if t.s != "mark" {
		return p.errAt(t, "only the ct key mark is supported")
	}
	return p.parseMark(t, true)
}

func (p *parser) number32(t token) (uint32, error) {
	n, err := strconv.ParseUint(t.s, 0, 32)
	if err != nil {
		return 0, p.errAt(t, "must be a 32-bit number (decimal or 0x hexadecimal)")
	}
	return uint32(n), nil
}

// parseMark reads what follows "mark" (the packet mark, or the connection
// mark when ct is set): a comparison, or in a rule a "set" action.
func (p *parser) parseMark(kw token, ct bool) error {
	if t, ok := p.accept("set"); ok {
		return p.parseMarkSet(t, ct)
	}
	var mm MarkMatch
	if _, ok := p.accept("and"); ok {
		v, err := p.want("mask")
		if err != nil {
			return err
		}
		if mm.Mask, err = p.number32(v); err != nil {
			return err
		}
		if mm.Mask == 0 {
			return p.errAt(v, "a zero mask matches nothing or everything")
		}
	}
	mm.Op = OpEq
	if t, ok := p.accept("==", "eq", "!=", "ne"); ok && (t.s == "!=" || t.s == "ne") {
		mm.Op = OpNeq
	}
	v, err := p.want("mark value")
	if err != nil {
		return err
	}
	if mm.Value, err = p.number32(v); err != nil {
		return err
	}
	if mm.Value&^mm.mask() != 0 {
		return p.errAt(v, "value has bits outside the mask")
	}
	m := &p.rule.Match
	dst := &m.Mark
	if ct {
		dst = &m.CtMark
	}
	if dst.Op != OpNone {
		return p.errAt(kw, "given twice")
	}
	*dst = mm
	return nil
}

func (p *parser) parseMarkSet(set token, ct bool) error {
	if !p.withAction {
		return p.errAt(set, "an action is not allowed here: give only the match")
	}
	src, err := p.want("source of the mark")
	if err != nil {
		return err
	}
	if ct {
		// ct mark set [meta] mark
		if src.s == "meta" {
			if src, err = p.want("mark"); err != nil {
				return err
			}
		}
		if src.s != "mark" {
			return p.errAt(src, "only \"ct mark set meta mark\" is supported")
		}
		return p.setAction(set, ActionSaveMark)
	}
	// [meta] mark set ct mark
	if src.s == "ct" {
		if src, err = p.want("mark"); err != nil {
			return err
		}
		if src.s == "mark" {
			return p.setAction(set, ActionRestoreMark)
		}
	}
	return p.errAt(src, "only \"meta mark set ct mark\" is supported")
}

func (p *parser) setAction(t token, a Action) error {
	if !p.withAction {
		return p.errAt(t, "an action is not allowed here: give only the match")
	}
	p.rule.Action = a
	p.haveAction = true
	return nil
}

func (p *parser) parseAction(kw token) error {
	switch kw.s {
	case "accept":
		return p.setAction(kw, ActionAccept)
	case "drop":
		return p.setAction(kw, ActionDrop)
	}
	if err := p.setAction(kw, ActionQueue); err != nil {
		return err
	}
	q := &p.rule.Queue
	haveNum := false
	for p.more() {
		t := p.toks[p.i]
		p.i++
		switch t.s {
		case "num", "to":
			if haveNum {
				return p.errAt(t, "queue number given twice")
			}
			haveNum = true
			v, err := p.want("queue number or range")
			if err != nil {
				return err
			}
			lo, hi, isRange := strings.Cut(v.s, "-")
			a, err1 := strconv.ParseUint(lo, 0, 16)
			b := a
			var err2 error
			if isRange {
				b, err2 = strconv.ParseUint(hi, 0, 16)
			}
			if err1 != nil || err2 != nil {
				return p.errAt(v, "queue must be a number or range within 0-65535")
			}
			if b < a {
				return p.errAt(v, "queue range is reversed")
			}
			q.Num, q.Total = uint16(a), uint16(b-a+1)
			if q.Total == 1 {
				q.Total = 0
			}
		case "bypass":
			q.Flags |= QueueBypass
		case "fanout":
			q.Flags |= QueueFanout
		case "flags":
			v, err := p.want("queue flags")
			if err != nil {
				return err
			}
			for _, f := range strings.Split(v.s, ",") {
				switch f {
				case "bypass":
					q.Flags |= QueueBypass
				case "fanout":
					q.Flags |= QueueFanout
				default:
					return p.errAt(v, "queue flags are bypass and fanout")
				}
			}
		default:
			return p.errAt(t, "expected num, bypass, fanout or flags after queue")
		}
	}
	if err := q.Validate(); err != nil {
		return p.errEnd(strings.TrimPrefix(strings.TrimPrefix(err.Error(), ErrInvalidRule.Error()), ": "))
	}
	return nil
}
