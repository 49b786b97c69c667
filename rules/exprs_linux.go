package rules

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"golang.org/x/sys/unix"
)

// reg is the register all expressions of a rule load into and compare
// from (NFT_REG_1, 16 bytes: room for an IPv6 address).
const reg = unix.NFT_REG_1

// nftFamily returns the nftables table family of f.
func nftFamily(f Family) nftables.TableFamily {
	switch f {
	case FamilyIPv4:
		return nftables.TableFamilyIPv4
	case FamilyIPv6:
		return nftables.TableFamilyIPv6
	}
	return nftables.TableFamilyINet
}

func familyOf(tf nftables.TableFamily) Family {
	switch tf {
	case nftables.TableFamilyIPv4:
		return FamilyIPv4
	case nftables.TableFamilyIPv6:
		return FamilyIPv6
	}
	return FamilyInet
}

// nftHook returns the kernel hook number of h.
func nftHook(h Hook) nftables.ChainHook {
	switch h {
	case HookPrerouting:
		return nftables.ChainHook(unix.NF_INET_PRE_ROUTING)
	case HookInput:
		return nftables.ChainHook(unix.NF_INET_LOCAL_IN)
	case HookForward:
		return nftables.ChainHook(unix.NF_INET_FORWARD)
	case HookOutput:
		return nftables.ChainHook(unix.NF_INET_LOCAL_OUT)
	}
	return nftables.ChainHook(unix.NF_INET_POST_ROUTING)
}

// xtQueueInfoLen is sizeof(struct xt_NFQ_info_v3) rounded up by XT_ALIGN
// (to 8 bytes), the length iptables-nft sends and the kernel lists.
const xtQueueInfoLen = 8

// xtQueueInfo returns the payload of the xtables NFQUEUE target, revision
// 3: struct xt_NFQ_info_v3 { __u16 queuenum; __u16 queues_total; __u16
// flags; } in host byte order, padded with zeros to XT_ALIGN.
func xtQueueInfo(q Queue) []byte {
	b := make([]byte, xtQueueInfoLen)
	binary.NativeEndian.PutUint16(b[0:], q.Num)
	binary.NativeEndian.PutUint16(b[2:], q.total())
	binary.NativeEndian.PutUint16(b[4:], uint16(q.Flags))
	return b
}

// queueExprs returns the queue action for backend b.
func queueExprs(q Queue, b Backend) []expr.Any {
	if b == BackendQueueExpr {
		return []expr.Any{&expr.Queue{Num: q.Num, Total: q.total(), Flag: expr.QueueFlag(q.Flags)}}
	}
	info := xt.Unknown(xtQueueInfo(q))
	return []expr.Any{&expr.Target{Name: "NFQUEUE", Rev: 3, Info: &info}}
}

func nfproto(f Family) byte {
	if f == FamilyIPv6 {
		return unix.NFPROTO_IPV6
	}
	return unix.NFPROTO_IPV4
}

// prefixExprs loads the source (src) or destination address from the
// network header and compares it with the prefix.
func prefixExprs(p netip.Prefix, src bool) []expr.Any {
	var off, n uint32 = 16, 4 // IPv4 daddr
	switch {
	case p.Addr().Is4() && src:
		off = 12
	case !p.Addr().Is4() && src:
		off, n = 8, 16
	case !p.Addr().Is4():
		off, n = 24, 16
	}
	bits := p.Bits()
	if bits == 0 {
		return nil // the family check alone
	}
	out := []expr.Any{&expr.Payload{
		OperationType: expr.PayloadLoad, DestRegister: reg,
		Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n,
	}}
	want := p.Masked().Addr().AsSlice()
	if bits < int(n)*8 {
		mask := make([]byte, n)
		for i := 0; i < bits; i++ {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		out = append(out, &expr.Bitwise{SourceRegister: reg, DestRegister: reg, Len: n, Mask: mask, Xor: make([]byte, n)})
	}
	return append(out, &expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: want})
}

func portExprs(off uint32, r PortRange) []expr.Any {
	if r.IsZero() {
		return nil
	}
	out := []expr.Any{&expr.Payload{
		OperationType: expr.PayloadLoad, DestRegister: reg,
		Base: expr.PayloadBaseTransportHeader, Offset: off, Len: 2,
	}}
	lo := binary.BigEndian.AppendUint16(nil, r.First)
	if r.last() == r.First {
		return append(out, &expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: lo})
	}
	hi := binary.BigEndian.AppendUint16(nil, r.last())
	return append(out, &expr.Range{Op: expr.CmpOpEq, Register: reg, FromData: lo, ToData: hi})
}

func ifaceExprs(key expr.MetaKey, name string) []expr.Any {
	if name == "" {
		return nil
	}
	var data []byte
	if base, wild := cutSuffix(name, "*"); wild {
		data = []byte(base)
	} else {
		data = make([]byte, ifNameSize)
		copy(data, name)
	}
	return []expr.Any{
		&expr.Meta{Key: key, Register: reg},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: data},
	}
}

func cutSuffix(s, suffix string) (string, bool) {
	if len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix {
		return s[:len(s)-len(suffix)], true
	}
	return s, false
}

// markExprs compares the value in reg (loaded by load) with m. Marks are in
// host byte order in the register.
func markExprs(load expr.Any, m MarkMatch) []expr.Any {
	if m.Op == OpNone {
		return nil
	}
	out := []expr.Any{load}
	if m.mask() != 0xffffffff {
		out = append(out, &expr.Bitwise{
			SourceRegister: reg, DestRegister: reg, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, m.mask()),
			Xor:  make([]byte, 4),
		})
	}
	op := expr.CmpOpEq
	if m.Op == OpNeq {
		op = expr.CmpOpNeq
	}
	return append(out, &expr.Cmp{Op: op, Register: reg, Data: binary.NativeEndian.AppendUint32(nil, m.Value)})
}

// matchExprs returns the expressions of m for a table of family tf. The
// caller has checked that the match can apply to tf.
func matchExprs(m Match, tf Family) ([]expr.Any, error) {
	mf, err := m.family()
	if err != nil {
		return nil, err
	}
	var out []expr.Any
	if tf == FamilyInet && mf != FamilyInet {
		out = append(out,
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{nfproto(mf)}})
	}
	if m.SrcAddr.IsValid() {
		out = append(out, prefixExprs(m.SrcAddr, true)...)
	}
	if m.DstAddr.IsValid() {
		out = append(out, prefixExprs(m.DstAddr, false)...)
	}
	if m.Proto != ProtoAny {
		out = append(out,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{byte(m.Proto)}})
	}
	out = append(out, portExprs(0, m.SrcPort)...)
	out = append(out, portExprs(2, m.DstPort)...)
	out = append(out, ifaceExprs(expr.MetaKeyIIFNAME, m.InIface)...)
	out = append(out, ifaceExprs(expr.MetaKeyOIFNAME, m.OutIface)...)
	out = append(out, markExprs(&expr.Meta{Key: expr.MetaKeyMARK, Register: reg}, m.Mark)...)
	out = append(out, markExprs(&expr.Ct{Key: expr.CtKeyMARK, Register: reg}, m.CtMark)...)
	return out, nil
}

// ruleExprs returns the expressions of r for a table of family tf, with the
// queue action built for backend b. Every rule counts the packets it acts on.
func ruleExprs(r Rule, tf Family, b Backend) ([]expr.Any, error) {
	out, err := matchExprs(r.Match, tf)
	if err != nil {
		return nil, err
	}
	out = append(out, &expr.Counter{})
	switch r.Action {
	case ActionQueue:
		out = append(out, queueExprs(r.Queue, b)...)
	case ActionAccept:
		out = append(out, &expr.Verdict{Kind: expr.VerdictAccept})
	case ActionDrop:
		out = append(out, &expr.Verdict{Kind: expr.VerdictDrop})
	case ActionSaveMark:
		out = append(out,
			&expr.Meta{Key: expr.MetaKeyMARK, Register: reg},
			&expr.Ct{Key: expr.CtKeyMARK, Register: reg, SourceRegister: true})
	case ActionRestoreMark:
		out = append(out,
			&expr.Ct{Key: expr.CtKeyMARK, Register: reg},
			&expr.Meta{Key: expr.MetaKeyMARK, Register: reg, SourceRegister: true})
	default:
		return nil, fmt.Errorf("%w: unknown action %v", ErrInvalidRule, r.Action)
	}
	return out, nil
}
