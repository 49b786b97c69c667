package wire

import "encoding/binary"

// Config describes one NFQNL_MSG_CONFIG request. Fields left zero are not
// sent, except Cmd when HasCmd is set.
type Config struct {
	Queue     uint16
	HasCmd    bool
	Cmd       uint8 // NFQNL_CFG_CMD_*
	HasParams bool
	CopyMode  uint8 // NFQNL_COPY_*
	CopyRange uint32
	MaxLen    uint32 // NFQA_CFG_QUEUE_MAXLEN; 0 = not sent
	Mask      uint32 // NFQA_CFG_MASK; 0 = flags not sent
	Flags     uint32 // NFQA_CFG_FLAGS
}

// AppendConfig appends a CONFIG message that asks for an acknowledgement.
// The kernel handles its attributes in the order command, params, maximum
// length, flags, so binding and configuring a queue is one atomic request.
func AppendConfig(b []byte, seq uint32, c *Config) []byte {
	b, start := AppendHeader(b, QueueType(MsgConfig), FlagRequest|FlagAck, seq, ProtoUnspec, c.Queue)
	if c.HasCmd {
		// struct nfqnl_msg_config_cmd { u8 command; u8 _pad; __be16 pf; }
		b = binary.NativeEndian.AppendUint16(b, AttrHdrLen+4)
		b = binary.NativeEndian.AppendUint16(b, CfgAttrCmd)
		b = append(b, c.Cmd, 0, 0, 0)
	}
	if c.HasParams {
		// struct nfqnl_msg_config_params { __be32 copy_range; u8 copy_mode; } packed
		b = binary.NativeEndian.AppendUint16(b, AttrHdrLen+5)
		b = binary.NativeEndian.AppendUint16(b, CfgAttrParams)
		b = binary.BigEndian.AppendUint32(b, c.CopyRange)
		b = append(b, c.CopyMode)
		b = pad(b)
	}
	if c.MaxLen != 0 {
		b = AppendBE32(b, CfgAttrQueueMax, c.MaxLen)
	}
	if c.Mask != 0 {
		b = AppendBE32(b, CfgAttrMask, c.Mask)
		b = AppendBE32(b, CfgAttrFlags, c.Flags)
	}
	return Finish(b, start)
}

// Verdict options present in a VerdictOpts (bits of VerdictOpts.Set).
const (
	OptMark = 1 << iota
	OptConnMark
	OptPriority
	OptPayload
	OptLabels
	OptVLAN
	OptL2Hdr
)

// BatchOpts are the options a VERDICT_BATCH message can carry.
const BatchOpts = OptMark | OptPriority

// VerdictOpts is a verdict value and its options, as sent in a VERDICT or
// VERDICT_BATCH message.
type VerdictOpts struct {
	Code       uint32 // NF_* verdict, with queue number and bypass flag
	Set        uint8  // Opt* bits
	Mark       uint32
	ConnMark   uint32
	Priority   uint32
	Payload    []byte
	Labels     [16]byte
	LabelsMask [16]byte
	VLANProto  uint16
	VLANTCI    uint16
	L2Hdr      []byte
}

// AppendVerdict appends a VERDICT message for packet id of queue. The
// message's sequence number is the packet id, so an error the kernel returns
// for it names the packet. flags are extra nlmsg flags (e.g. FlagAck).
func AppendVerdict(b []byte, queue uint16, id uint32, v *VerdictOpts, flags uint16) []byte {
	b, start := appendVerdictStart(b, MsgVerdict, queue, id, v, flags)
	// NFQA_CT carries conntrack changes; its mere presence also makes the
	// kernel adjust TCP sequence numbers when a payload changes length, so
	// a verdict with a payload always carries it, empty if need be.
	if v.Set&(OptConnMark|OptLabels|OptPayload) != 0 {
		var n int
		b, n = BeginNest(b, AttrCT)
		if v.Set&OptConnMark != 0 {
			b = AppendBE32(b, CTAMark, v.ConnMark)
		}
		if v.Set&OptLabels != 0 {
			b = AppendAttr(b, CTALabels, v.Labels[:])
			b = AppendAttr(b, CTALabelsMask, v.LabelsMask[:])
		}
		b = EndNest(b, n)
	}
	if v.Set&OptVLAN != 0 {
		var n int
		b, n = BeginNest(b, AttrVLAN)
		b = AppendBE16(b, VLANAttrProto, v.VLANProto)
		b = AppendBE16(b, VLANAttrTCI, v.VLANTCI)
		b = EndNest(b, n)
	}
	if v.Set&OptL2Hdr != 0 {
		b = AppendAttr(b, AttrL2Hdr, v.L2Hdr)
	}
	if v.Set&OptPayload != 0 {
		b = AppendAttr(b, AttrPayload, v.Payload)
	}
	return Finish(b, start)
}

// AppendVerdictBatch appends a VERDICT_BATCH message that gives v to every
// packet of queue with an id up to and including id. Only the options in
// BatchOpts are encoded; the caller refuses the others.
func AppendVerdictBatch(b []byte, queue uint16, id uint32, v *VerdictOpts, flags uint16) []byte {
	b, start := appendVerdictStart(b, MsgVerdictBatch, queue, id, v, flags)
	return Finish(b, start)
}

// appendVerdictStart appends what both verdict messages begin with: the
// headers, the verdict header, and the mark and priority options.
func appendVerdictStart(b []byte, typ uint8, queue uint16, id uint32, v *VerdictOpts, flags uint16) ([]byte, int) {
	b, start := AppendHeader(b, QueueType(typ), FlagRequest|flags, id, ProtoUnspec, queue)
	// struct nfqnl_msg_verdict_hdr { __be32 verdict; __be32 id; }
	b = binary.NativeEndian.AppendUint16(b, AttrHdrLen+8)
	b = binary.NativeEndian.AppendUint16(b, AttrVerdictHdr)
	b = binary.BigEndian.AppendUint32(b, v.Code)
	b = binary.BigEndian.AppendUint32(b, id)
	if v.Set&OptMark != 0 {
		b = AppendBE32(b, AttrMark, v.Mark)
	}
	if v.Set&OptPriority != 0 {
		b = AppendBE32(b, AttrPriority, v.Priority)
	}
	return b, start
}

// VerdictHdr decodes an NFQA_VERDICT_HDR value.
func VerdictHdr(b []byte) (code, id uint32, ok bool) {
	if len(b) < 8 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint32(b[0:4]), binary.BigEndian.Uint32(b[4:8]), true
}

// PacketHdr decodes an NFQA_PACKET_HDR value.
func PacketHdr(b []byte) (id uint32, hwProto uint16, hook uint8, ok bool) {
	if len(b) < 7 {
		return 0, 0, 0, false
	}
	return binary.BigEndian.Uint32(b[0:4]), binary.BigEndian.Uint16(b[4:6]), b[6], true
}

// HwAddr decodes an NFQA_HWADDR value and returns the address bytes.
func HwAddr(b []byte) ([]byte, bool) {
	if len(b) < 4 {
		return nil, false
	}
	n := int(binary.BigEndian.Uint16(b[0:2]))
	if n > len(b)-4 || n > 8 {
		return nil, false
	}
	return b[4 : 4+n : 4+n], true
}

// Timestamp decodes an NFQA_TIMESTAMP value.
func Timestamp(b []byte) (sec, usec int64, ok bool) {
	if len(b) < 16 {
		return 0, 0, false
	}
	return int64(binary.BigEndian.Uint64(b[0:8])), int64(binary.BigEndian.Uint64(b[8:16])), true
}

// VLAN decodes a nested NFQA_VLAN value.
func VLAN(b []byte) (proto, tci uint16, ok bool) {
	var hasP, hasT bool
	a := NewAttrs(b)
	for a.Next() {
		switch a.Type() {
		case VLANAttrProto:
			proto, hasP = BE16(a.Data())
		case VLANAttrTCI:
			tci, hasT = BE16(a.Data())
		}
	}
	return proto, tci, hasP && hasT && a.Err() == nil
}
