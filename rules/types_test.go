package rules

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	pfx := netip.MustParsePrefix
	bad := []struct {
		name string
		err  error
	}{
		{"port without protocol", Match{DstPort: Port(53)}.Validate()},
		{"port with icmp", Match{Proto: ProtoICMP, DstPort: Port(53)}.Validate()},
		{"reversed range", Match{Proto: ProtoUDP, DstPort: PortRange{10, 5}}.Validate()},
		{"range from 0", Match{Proto: ProtoUDP, SrcPort: PortRange{0, 5}}.Validate()},
		{"family vs address", Match{Family: FamilyIPv6, SrcAddr: pfx("10.0.0.0/8")}.Validate()},
		{"mixed addresses", Match{SrcAddr: pfx("10.0.0.0/8"), DstAddr: pfx("::1/128")}.Validate()},
		{"icmp in ipv6", Match{Family: FamilyIPv6, Proto: ProtoICMP}.Validate()},
		{"icmpv6 with ipv4 address", Match{DstAddr: pfx("1.2.3.4/32"), Proto: ProtoICMPv6}.Validate()},
		{"unknown family", Match{Family: 9}.Validate()},
		{"invalid prefix", Match{SrcAddr: netip.PrefixFrom(netip.MustParseAddr("10.0.0.1"), 40)}.Validate()},
		{"long iface", Match{InIface: "0123456789abcdef"}.Validate()},
		{"iface star only", Match{OutIface: "*"}.Validate()},
		{"iface slash", Match{OutIface: "a/b"}.Validate()},
		{"mark value without op", Match{Mark: MarkMatch{Value: 1}}.Validate()},
		{"mark bits outside mask", Match{CtMark: MarkMatch{Op: OpEq, Value: 0x100, Mask: 0xff}}.Validate()},
		{"unknown op", Match{Mark: MarkMatch{Op: 7}}.Validate()},
		{"queue beyond 65535", Queue{Num: 65535, Total: 2}.Validate()},
		{"fanout without range", Queue{Flags: QueueFanout}.Validate()},
		{"unknown flag", Queue{Flags: 4}.Validate()},
		{"queue with accept", Rule{Action: ActionAccept, Queue: Queue{Num: 1}}.Validate()},
		{"unknown action", Rule{Action: 9}.Validate()},
		{"chain without hook", Chain{}.Validate()},
		{"chain bad hook", Chain{Hook: 6}.Validate()},
		{"chain bad name", Chain{Hook: HookInput, Name: "a\x00b"}.Validate()},
	}
	for _, b := range bad {
		if !errors.Is(b.err, ErrInvalidRule) {
			t.Errorf("%s: got %v, want an ErrInvalidRule", b.name, b.err)
		}
	}
	good := []error{
		Match{}.Validate(),
		Match{SrcAddr: pfx("10.0.0.0/8"), DstAddr: pfx("10.0.0.1/32"), Proto: ProtoICMP}.Validate(),
		Match{Family: FamilyIPv6, Proto: ProtoSCTP, SrcPort: Port(1), DstPort: PortRange{First: 5}}.Validate(),
		Match{Proto: 47}.Validate(),
		Match{InIface: "012345678901234", OutIface: "veth*"}.Validate(),
		Match{Mark: MarkMatch{Op: OpNeq}, CtMark: MarkMatch{Op: OpEq, Value: 0x100, Mask: 0xf00}}.Validate(),
		Queue{Num: 65535}.Validate(),
		Queue{Num: 65534, Total: 2, Flags: QueueBypass | QueueFanout}.Validate(),
		Rule{Action: ActionSaveMark}.Validate(),
		Chain{Hook: HookPostrouting, Priority: -300}.Validate(),
	}
	for i, err := range good {
		if err != nil {
			t.Errorf("good case %d: %v", i, err)
		}
	}
	var c Config
	if err := c.validate(); err != nil || c.Table != DefaultTable {
		t.Errorf("zero Config: %v, table %q", err, c.Table)
	}
	for _, c := range []Config{{Table: strings.Repeat("x", 201)}, {Family: 3}, {Backend: 3}, {NetNSFd: -1}} {
		if err := c.validate(); !errors.Is(err, ErrInvalidRule) {
			t.Errorf("Config %+v: got %v, want ErrInvalidRule", c, err)
		}
	}
}

func TestStrings(t *testing.T) {
	tests := []struct {
		got  interface{ String() string }
		want string
	}{
		{FamilyInet, "inet"}, {FamilyIPv4, "ip"}, {FamilyIPv6, "ip6"}, {Family(7), "Family(7)"},
		{HookPrerouting, "prerouting"}, {HookInput, "input"}, {HookForward, "forward"},
		{HookOutput, "output"}, {HookPostrouting, "postrouting"}, {Hook(0), "Hook(0)"},
		{BackendAuto, "auto"}, {BackendQueueExpr, "nft-queue"}, {BackendXtTarget, "xt-NFQUEUE"}, {Backend(9), "Backend(9)"},
		{ProtoAny, "any"}, {ProtoTCP, "tcp"}, {ProtoICMPv6, "icmpv6"}, {L4Proto(47), "47"},
		{OpNone, "none"}, {OpEq, "=="}, {OpNeq, "!="}, {Op(5), "Op(5)"},
		{QueueFlags(0), "none"}, {QueueBypass, "bypass"}, {QueueBypass | QueueFanout, "bypass,fanout"}, {QueueFlags(0x8), "0x8"},
		{ActionQueue, "queue"}, {ActionAccept, "accept"}, {ActionDrop, "drop"}, {ActionSaveMark, "save-mark"},
		{ActionRestoreMark, "restore-mark"}, {Action(9), "Action(9)"},
		{PortRange{}, ""}, {Port(53), "53"}, {PortRange{First: 80}, "80"}, {PortRange{1, 2}, "1-2"},
		{MarkMatch{}, ""}, {MarkMatch{Op: OpNeq, Value: 1}, "!= 0x1"}, {MarkMatch{Op: OpEq, Value: 0x10, Mask: 0xf0}, "and 0xf0 == 0x10"},
		{Queue{}, "queue num 0"}, {Queue{Num: 2, Total: 3, Flags: QueueBypass | QueueFanout}, "queue num 2-4 bypass fanout"},
		{Match{}, ""}, {Match{Proto: 47}, "meta l4proto 47"}, {Match{Family: FamilyIPv6, Proto: ProtoTCP, DstPort: Port(1)}, "ip6 tcp dport 1"},
		{Rule{}, "queue num 0"}, {Rule{Match: Match{Proto: ProtoUDP}, Action: ActionDrop}, "udp drop"},
		{Rule{Action: ActionRestoreMark}, "meta mark set ct mark"},
		{RuleInfo{Family: FamilyInet, Chain: "input", Handle: 4, Comment: "udp queue num 0", Packets: 3, Bytes: 90}, "inet input #4 udp queue num 0 (3 packets, 90 bytes)"},
	}
	for _, tt := range tests {
		if s := tt.got.String(); s != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.got, s, tt.want)
		}
	}
}

func TestCommentUserData(t *testing.T) {
	if got := commentUserData("hi"); string(got) != "\x00\x03hi\x00" {
		t.Errorf("commentUserData(hi) = %q", got)
	}
	if commentUserData("") != nil {
		t.Errorf("empty comment gives user data")
	}
	long := strings.Repeat("a", 126) + "é" // the 2-byte rune straddles byte 127
	u := commentUserData(long)
	if c := commentFromUserData(u); c != strings.Repeat("a", 126) {
		t.Errorf("cut comment = %q", c)
	}
	if int(u[1]) != 127 {
		t.Errorf("length byte %d", u[1])
	}
	for _, s := range []string{"x", "udp dport 53 queue num 0 bypass", strings.Repeat("b", 127)} {
		if got := commentFromUserData(commentUserData(s)); got != s {
			t.Errorf("round trip %q -> %q", s, got)
		}
	}
	// Another record first, then the comment; and malformed input.
	if got := commentFromUserData([]byte{1, 1, 9, 0, 2, 'z', 0}); got != "z" {
		t.Errorf("second record: %q", got)
	}
	for _, b := range [][]byte{nil, {0}, {0, 5, 'a'}, {1, 200}} {
		if got := commentFromUserData(b); got != "" {
			t.Errorf("commentFromUserData(%v) = %q", b, got)
		}
	}
}

func TestFlowBypassRules(t *testing.T) {
	m, err := ParseMatch("tcp dport 443")
	if err != nil {
		t.Fatal(err)
	}
	q, save, err := FlowBypass(m, Queue{Num: 3}, 0x10)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{q[0].String(), q[1].String(), save.String()}
	want := []string{"ct mark and 0x10 == 0x10 accept", "tcp dport 443 queue num 3", "meta mark and 0x10 == 0x10 ct mark set meta mark"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("rule %d: %q, want %q", i, got[i], want[i])
		}
	}
	if _, _, err := FlowBypass(m, Queue{Num: 3}, 0); !errors.Is(err, ErrInvalidRule) {
		t.Errorf("zero mark: %v", err)
	}
}
