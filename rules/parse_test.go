package rules

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseMatch(t *testing.T) {
	pfx := netip.MustParsePrefix
	tests := []struct {
		spec string
		want Match
	}{
		{"", Match{}},
		{"udp dport 53", Match{Proto: ProtoUDP, DstPort: Port(53)}},
		{"tcp dport 80", Match{Proto: ProtoTCP, DstPort: Port(80)}},
		{"  tcp\tdport   80 ", Match{Proto: ProtoTCP, DstPort: Port(80)}},
		{"icmp", Match{Proto: ProtoICMP}},
		{"icmpv6", Match{Proto: ProtoICMPv6}},
		{"ipv6-icmp", Match{Proto: ProtoICMPv6}},
		{"ip saddr 10.0.0.1 udp", Match{Family: FamilyIPv4, SrcAddr: pfx("10.0.0.1/32"), Proto: ProtoUDP}},
		{"ip daddr 10.1.0.0/16", Match{Family: FamilyIPv4, DstAddr: pfx("10.1.0.0/16")}},
		{"ip6 saddr ::1 ip6 daddr fd00::/8", Match{Family: FamilyIPv6, SrcAddr: pfx("::1/128"), DstAddr: pfx("fd00::/8")}},
		{"ip", Match{Family: FamilyIPv4}},
		{"ip6 tcp", Match{Family: FamilyIPv6, Proto: ProtoTCP}},
		{"meta nfproto ipv6", Match{Family: FamilyIPv6}},
		{"ip protocol udp", Match{Family: FamilyIPv4, Proto: ProtoUDP}},
		{"meta l4proto udp", Match{Proto: ProtoUDP}},
		{"meta l4proto 47", Match{Proto: 47}},
		{"meta l4proto 0x2f", Match{Proto: 47}},
		{"udp sport 1000-2000 udp dport 53", Match{Proto: ProtoUDP, SrcPort: PortRange{1000, 2000}, DstPort: Port(53)}},
		{"udp sport 1024-1024", Match{Proto: ProtoUDP, SrcPort: Port(1024)}},
		{"sctp dport 0x50", Match{Proto: ProtoSCTP, DstPort: Port(80)}},
		{"udplite", Match{Proto: ProtoUDPLite}},
		{"mark != 1", Match{Mark: MarkMatch{Op: OpNeq, Value: 1}}},
		{"meta mark 0x10", Match{Mark: MarkMatch{Op: OpEq, Value: 16}}},
		{"meta mark == 7", Match{Mark: MarkMatch{Op: OpEq, Value: 7}}},
		{"meta mark and 0xff00 ne 0x100", Match{Mark: MarkMatch{Op: OpNeq, Value: 0x100, Mask: 0xff00}}},
		{"ct mark != 0x1", Match{CtMark: MarkMatch{Op: OpNeq, Value: 1}}},
		{"ct mark eq 0", Match{CtMark: MarkMatch{Op: OpEq}}},
		{"iifname lo", Match{InIface: "lo"}},
		{"meta oifname veth*", Match{OutIface: "veth*"}},
		{`iifname "eth0"`, Match{InIface: "eth0"}},
		{"counter udp", Match{Proto: ProtoUDP}},
		{"ip saddr 10.0.0.1 ip daddr 10.0.0.2 tcp sport 1 tcp dport 2 iifname a oifname b mark != 1 ct mark != 2",
			Match{Family: FamilyIPv4, SrcAddr: pfx("10.0.0.1/32"), DstAddr: pfx("10.0.0.2/32"), Proto: ProtoTCP,
				SrcPort: Port(1), DstPort: Port(2), InIface: "a", OutIface: "b",
				Mark: MarkMatch{Op: OpNeq, Value: 1}, CtMark: MarkMatch{Op: OpNeq, Value: 2}}},
	}
	for _, tt := range tests {
		got, err := ParseMatch(tt.spec)
		if err != nil {
			t.Errorf("ParseMatch(%q): %v", tt.spec, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseMatch(%q) = %#v, want %#v", tt.spec, got, tt.want)
			continue
		}
		if err := got.Validate(); err != nil {
			t.Errorf("ParseMatch(%q) gave a match that does not validate: %v", tt.spec, err)
		}
		// String gives a spec that reads back to the same match.
		s := got.String()
		again, err := ParseMatch(s)
		if err != nil || again != got {
			t.Errorf("ParseMatch(%q).String() = %q, which parses to %#v, %v", tt.spec, s, again, err)
		}
	}
}

func TestParseMatchErrors(t *testing.T) {
	tests := []struct {
		spec   string
		token  string // "" for an error at the end
		reason string // a substring of the reason
	}{
		{"udp dport x", "x", "port must be a number"},
		{"udp dport 0", "0", "port must be a number"},
		{"udp dport 65536", "65536", "port must be a number"},
		{"udp dport 60-50", "60-50", "reversed"},
		{"udp dport", "", "missing port"},
		{"udp dport != 53", "!=", "negated port"},
		{"udp dport { 53, 54 }", "{", "sets"},
		{"tcp flags syn", "flags", "only sport and dport"},
		{"tcp dport 80 udp", "udp", "conflicts with the earlier protocol tcp"},
		{"icmp type echo-request", "type", "ICMP field"},
		{"ip saddr 10.0.0.1 ip6", "ip6", "conflicts"},
		{"ip saddr ::1", "::1", "not an IPv4 address"},
		{"ip6 daddr 10.0.0.1", "10.0.0.1", "not an IPv6 address"},
		{"ip saddr 10.0.0.300", "10.0.0.300", "not an IP address"},
		{"ip saddr 10.0.0.0/33", "10.0.0.0/33", "not an address prefix"},
		{"ip6 saddr fe80::1%eth0", "fe80::1%eth0", "zone"},
		{"ip saddr != 10.0.0.1", "!=", "negated address"},
		{"ip saddr 1.1.1.1 ip saddr 1.1.1.2", "saddr", "given twice"},
		{"ip ttl 3", "ttl", "not supported"},
		{"ip6 nexthdr udp", "nexthdr", "meta l4proto"},
		{"ip6 protocol udp", "protocol", "ip6 has no protocol"},
		{"ip6 saddr ::1 icmp", "icmp", "icmp does not exist in ip6"},
		{"icmpv6 ip", "ip", "does not exist"},
		{"meta l4proto gre", "gre", "protocol must be"},
		{"meta l4proto 0", "0", "protocol must be"},
		{"meta l4proto 256", "256", "protocol must be"},
		{"meta skuid 0", "skuid", "unsupported meta key"},
		{"meta protocol ip", "protocol", "link layer"},
		{"meta nfproto arp", "arp", "ipv4 or ipv6"},
		{"meta", "", "missing meta key"},
		{"mark != x", "x", "32-bit number"},
		{"mark and 0 == 0", "0", "zero mask"},
		{"mark and 0xff == 0x100", "0x100", "outside the mask"},
		{"mark 1 mark 2", "mark", "given twice"},
		{"ct state established", "state", "only the ct key mark"},
		{"iifname", "", "missing interface name"},
		{"iifname averyveryverylongname", "averyveryverylongname", "longer than 15"},
		{"iifname *", "*", "every interface"},
		{"iifname != lo", "!=", "negated interface"},
		{"th dport 53", "th", "name the protocol"},
		{"!= 1", "!=", "must follow a field"},
		{"{ 1 }", "{", "sets"},
		{"frobnicate", "frobnicate", "unknown keyword"},
		{"udp dport 53 queue", "queue", "action is not allowed"},
		{"accept", "accept", "action is not allowed"},
		{"ct mark set meta mark", "set", "action is not allowed"},
	}
	for _, tt := range tests {
		_, err := ParseMatch(tt.spec)
		if err == nil {
			t.Errorf("ParseMatch(%q) succeeded, want an error", tt.spec)
			continue
		}
		if !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("ParseMatch(%q): error %v does not match ErrInvalidSpec", tt.spec, err)
		}
		var se *SpecError
		if !errors.As(err, &se) {
			t.Errorf("ParseMatch(%q): error %T is not a *SpecError", tt.spec, err)
			continue
		}
		if se.Spec != tt.spec || se.Token != tt.token || !strings.Contains(se.Reason, tt.reason) {
			t.Errorf("ParseMatch(%q): got token %q reason %q, want token %q reason containing %q", tt.spec, se.Token, se.Reason, tt.token, tt.reason)
		}
		if tt.token != "" && (se.Offset < 0 || se.Offset+len(tt.token) > len(tt.spec) || tt.spec[se.Offset:se.Offset+len(tt.token)] != tt.token) {
			t.Errorf("ParseMatch(%q): offset %d does not point at %q", tt.spec, se.Offset, tt.token)
		}
		if tt.token == "" && se.Offset != len(tt.spec) {
			t.Errorf("ParseMatch(%q): offset %d, want the end %d", tt.spec, se.Offset, len(tt.spec))
		}
		if !strings.Contains(err.Error(), tt.reason) || !strings.Contains(err.Error(), tt.spec) {
			t.Errorf("ParseMatch(%q): message %q lacks the spec or reason", tt.spec, err)
		}
	}
}

func TestSpecErrorMessage(t *testing.T) {
	_, err := ParseMatch("udp dport x")
	want := `rules: invalid rule spec "udp dport x": at "x" (offset 10): port must be a number from 1 to 65535`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	_, err = ParseMatch("udp dport")
	want = `rules: invalid rule spec "udp dport": at end: missing port`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func TestParseRule(t *testing.T) {
	tests := []struct {
		spec string
		want Rule
	}{
		{"queue", Rule{}},
		{"udp dport 53 queue num 3 bypass", Rule{Match: Match{Proto: ProtoUDP, DstPort: Port(53)}, Queue: Queue{Num: 3, Flags: QueueBypass}}},
		{"queue num 0-3 fanout", Rule{Queue: Queue{Num: 0, Total: 4, Flags: QueueFanout}}},
		{"queue flags bypass,fanout to 10-11", Rule{Queue: Queue{Num: 10, Total: 2, Flags: QueueBypass | QueueFanout}}},
		{"queue num 7-7", Rule{Queue: Queue{Num: 7}}},
		{"queue num 65535", Rule{Queue: Queue{Num: 65535}}},
		{"ct mark 1 accept", Rule{Match: Match{CtMark: MarkMatch{Op: OpEq, Value: 1}}, Action: ActionAccept}},
		{"tcp drop", Rule{Match: Match{Proto: ProtoTCP}, Action: ActionDrop}},
		{"ct mark set meta mark", Rule{Action: ActionSaveMark}},
		{"ct mark set mark", Rule{Action: ActionSaveMark}},
		{"meta mark set ct mark", Rule{Action: ActionRestoreMark}},
		{"mark set ct mark", Rule{Action: ActionRestoreMark}},
		{"meta mark != 0 ct mark set meta mark", Rule{Match: Match{Mark: MarkMatch{Op: OpNeq}}, Action: ActionSaveMark}},
		{"udp counter queue num 1", Rule{Match: Match{Proto: ProtoUDP}, Queue: Queue{Num: 1}}},
	}
	for _, tt := range tests {
		got, err := ParseRule(tt.spec)
		if err != nil {
			t.Errorf("ParseRule(%q): %v", tt.spec, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseRule(%q) = %#v, want %#v", tt.spec, got, tt.want)
			continue
		}
		if err := got.Validate(); err != nil {
			t.Errorf("ParseRule(%q) gave a rule that does not validate: %v", tt.spec, err)
		}
		again, err := ParseRule(got.String())
		if err != nil || again != got {
			t.Errorf("ParseRule(%q).String() = %q, which parses to %#v, %v", tt.spec, got.String(), again, err)
		}
	}
}

func TestParseRuleErrors(t *testing.T) {
	tests := []struct {
		spec, token, reason string
	}{
		{"udp dport 53", "", "missing action"},
		{"", "", "missing action"},
		{"accept drop", "drop", "nothing may follow the action"},
		{"queue num 1 udp", "udp", "expected num"},
		{"queue num", "", "missing queue number"},
		{"queue num 70000", "70000", "within 0-65535"},
		{"queue num 5-4", "5-4", "reversed"},
		{"queue num 1 num 2", "num", "given twice"},
		{"queue num 1 fanout", "", "fanout needs a range"},
		{"queue num 65535-65535 bypass", "", ""},
		{"queue flags bypass,bogus", "bypass,bogus", "bypass and fanout"},
		{"ct mark set 1", "1", "only \"ct mark set meta mark\""},
		{"meta mark set 1", "1", "only \"meta mark set ct mark\""},
		{"meta mark set ct state", "state", "only \"meta mark set ct mark\""},
	}
	for _, tt := range tests {
		r, err := ParseRule(tt.spec)
		if tt.spec == "queue num 65535-65535 bypass" {
			if err != nil || r.Queue != (Queue{Num: 65535, Flags: QueueBypass}) {
				t.Errorf("ParseRule(%q) = %v, %v", tt.spec, r, err)
			}
			continue
		}
		var se *SpecError
		if !errors.As(err, &se) || !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("ParseRule(%q) = %v, want a *SpecError", tt.spec, err)
			continue
		}
		if se.Token != tt.token || !strings.Contains(se.Reason, tt.reason) {
			t.Errorf("ParseRule(%q): got token %q reason %q, want %q and %q", tt.spec, se.Token, se.Reason, tt.token, tt.reason)
		}
	}
}

func FuzzParseRule(f *testing.F) {
	for _, s := range []string{"udp dport 53 queue num 0-3 bypass", "ip saddr 10.0.0.0/8 tcp accept",
		"ct mark != 1 ct mark set meta mark", "ip6 daddr ::1 icmpv6 queue flags bypass to 2", "meta mark and 0xff 3 drop"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRule(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("ParseRule(%q): error %v does not match ErrInvalidSpec", s, err)
			}
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("ParseRule(%q) = %v, which does not validate: %v", s, r, err)
		}
		again, err := ParseRule(r.String())
		if err != nil || again != r {
			t.Fatalf("ParseRule(%q).String() = %q, which parses to %v, %v", s, r.String(), again, err)
		}
	})
}
