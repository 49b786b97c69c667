package rules

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"

	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"golang.org/x/sys/unix"
)

var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// TestXtQueueInfo checks the payload of the xtables NFQUEUE target against
// the layout of struct xt_NFQ_info_v3 in the kernel's
// include/uapi/linux/netfilter/xt_NFQUEUE.h: three __u16 (queuenum,
// queues_total, flags) in host byte order, padded by XT_ALIGN to 8 bytes.
func TestXtQueueInfo(t *testing.T) {
	tests := []struct {
		q      Queue
		le, be string
	}{
		{Queue{}, "0000010000000000", "0000000100000000"},
		{Queue{Num: 1, Flags: QueueBypass}, "0100010001000000", "0001000100010000"},
		{Queue{Num: 0x1234, Total: 4, Flags: QueueBypass | QueueFanout}, "3412040003000000", "1234000400030000"},
		{Queue{Num: 65535}, "ffff010000000000", "ffff000100000000"},
		{Queue{Num: 10, Total: 1}, "0a00010000000000", "000a000100000000"},
	}
	for _, tt := range tests {
		got := xtQueueInfo(tt.q)
		want := tt.be
		if littleEndian {
			want = tt.le
		}
		if hex.EncodeToString(got) != want {
			t.Errorf("xtQueueInfo(%+v) = %x, want %s", tt.q, got, want)
		}
		// The same bytes read back as the C struct.
		var s struct{ QueueNum, QueuesTotal, Flags, Pad uint16 }
		if err := binary.Read(bytes.NewReader(got), binary.NativeEndian, &s); err != nil {
			t.Fatal(err)
		}
		if s.QueueNum != tt.q.Num || s.QueuesTotal != tt.q.total() || s.Flags != uint16(tt.q.Flags) || s.Pad != 0 {
			t.Errorf("xtQueueInfo(%+v) reads back as %+v", tt.q, s)
		}
	}
	// The flag bits are the kernel's.
	if QueueBypass != 0x01 || QueueFanout != 0x02 ||
		uint16(QueueBypass) != unix.NFT_QUEUE_FLAG_BYPASS || uint16(QueueFanout) != unix.NFT_QUEUE_FLAG_CPU_FANOUT {
		t.Errorf("queue flag values differ from NFQ_FLAG_* / NFT_QUEUE_FLAG_*")
	}
}

// TestTargetExprBytes checks the whole netlink encoding of the queue action
// for the xt backend: the nft_compat "target" expression with the attribute
// layout of the kernel's nft_target_policy (NFTA_TARGET_NAME string,
// NFTA_TARGET_REV be32, NFTA_TARGET_INFO binary). Attribute headers are in
// host byte order, so the golden bytes are for little-endian machines.
func TestTargetExprBytes(t *testing.T) {
	if !littleEndian {
		t.Skip("golden bytes are little-endian")
	}
	ex := queueExprs(Queue{Num: 3, Total: 2, Flags: QueueBypass | QueueFanout}, BackendXtTarget)
	if len(ex) != 1 {
		t.Fatalf("got %d expressions", len(ex))
	}
	got, err := expr.Marshal(unix.NFPROTO_INET, ex[0])
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"0b000100", "7461726765740000", // NFTA_EXPR_NAME "target\0" + pad
		"24000280",                     // NFTA_EXPR_DATA | NLA_F_NESTED, 36 bytes
		"0c000100", "4e46515545554500", // NFTA_TARGET_NAME "NFQUEUE\0"
		"08000200", "00000003", // NFTA_TARGET_REV = 3 (be32)
		"0c000300", "0300020003000000", // NFTA_TARGET_INFO: xt_NFQ_info_v3{3, 2, bypass|fanout} + pad
	}, "")
	if hex.EncodeToString(got) != want {
		t.Errorf("target expression:\n got %x\nwant %s", got, want)
	}

	// And the nft queue expression (nft_queue_policy: NUM, TOTAL, FLAGS, all be16).
	got, err = expr.Marshal(unix.NFPROTO_INET, queueExprs(Queue{Num: 3, Total: 2, Flags: QueueBypass}, BackendQueueExpr)[0])
	if err != nil {
		t.Fatal(err)
	}
	want = strings.Join([]string{
		"0a000100", "7175657565000000", // NFTA_EXPR_NAME "queue\0" + pad
		"1c000280",             // NFTA_EXPR_DATA | NLA_F_NESTED, 28 bytes
		"06000100", "00030000", // NFTA_QUEUE_NUM 3
		"06000200", "00020000", // NFTA_QUEUE_TOTAL 2
		"06000300", "00010000", // NFTA_QUEUE_FLAGS bypass
	}, "")
	if hex.EncodeToString(got) != want {
		t.Errorf("queue expression:\n got %x\nwant %s", got, want)
	}
}

func le32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

func TestRuleExprs(t *testing.T) {
	info := xt.Unknown(xtQueueInfo(Queue{Num: 1, Flags: QueueBypass}))
	tests := []struct {
		spec string
		tf   Family
		b    Backend
		want []expr.Any
	}{
		{"udp dport 53 queue num 1 bypass", FamilyInet, BackendXtTarget, []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{17}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0, 53}},
			&expr.Counter{},
			&expr.Target{Name: "NFQUEUE", Rev: 3, Info: &info},
		}},
		{"ip saddr 10.1.2.3/16 tcp sport 1000-2000 queue num 1 bypass", FamilyInet, BackendQueueExpr, []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte{255, 255, 0, 0}, Xor: []byte{0, 0, 0, 0}},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{10, 1, 0, 0}},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{6}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2},
			&expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: []byte{0x03, 0xe8}, ToData: []byte{0x07, 0xd0}},
			&expr.Counter{},
			&expr.Queue{Num: 1, Total: 1, Flag: expr.QueueFlagBypass},
		}},
		// In an ip6 table the family check is implicit.
		{"ip6 daddr ::1 accept", FamilyIPv6, BackendXtTarget, []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{15: 1}},
			&expr.Counter{},
			&expr.Verdict{Kind: expr.VerdictAccept},
		}},
		{"ip6 saddr fd00::/8 drop", FamilyInet, BackendXtTarget, []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV6}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 16, Mask: []byte{0: 0xff, 15: 0}, Xor: make([]byte, 16)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0: 0xfd, 15: 0}},
			&expr.Counter{},
			&expr.Verdict{Kind: expr.VerdictDrop},
		}},
		{"iifname lo oifname veth* mark and 0xff != 1 ct mark 2 ct mark set meta mark", FamilyInet, BackendXtTarget, []expr.Any{
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{'l', 'o', 15: 0}},
			&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte("veth")},
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: le32(0xff), Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: le32(1)},
			&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: le32(2)},
			&expr.Counter{},
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Ct{Key: expr.CtKeyMARK, Register: 1, SourceRegister: true},
		}},
		{"meta mark set ct mark", FamilyIPv4, BackendXtTarget, []expr.Any{
			&expr.Counter{},
			&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1, SourceRegister: true},
		}},
		{"ip saddr 0.0.0.0/0 icmp queue num 1 bypass", FamilyInet, BackendXtTarget, []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{1}},
			&expr.Counter{},
			&expr.Target{Name: "NFQUEUE", Rev: 3, Info: &info},
		}},
	}
	for _, tt := range tests {
		r, err := ParseRule(tt.spec)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ruleExprs(r, tt.tf, tt.b)
		if err != nil {
			t.Errorf("%s: %v", tt.spec, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s in %v:", tt.spec, tt.tf)
			for i := 0; i < max(len(got), len(tt.want)); i++ {
				var g, w any
				if i < len(got) {
					g = got[i]
				}
				if i < len(tt.want) {
					w = tt.want[i]
				}
				if !reflect.DeepEqual(g, w) {
					t.Errorf("  expr %d: got %#v, want %#v", i, g, w)
				}
			}
		}
		// Every expression marshals.
		for _, e := range got {
			if _, err := expr.Marshal(byte(nftFamily(tt.tf)), e); err != nil {
				t.Errorf("%s: marshal %T: %v", tt.spec, e, err)
			}
		}
	}
}
