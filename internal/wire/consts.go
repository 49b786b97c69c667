package wire

// Netlink framing (include/uapi/linux/netlink.h).
const (
	HeaderLen  = 16 // sizeof(struct nlmsghdr)
	AttrHdrLen = 4  // NLA_HDRLEN
	GenMsgLen  = 4  // sizeof(struct nfgenmsg)

	NLMsgNoop    = 0x1 // NLMSG_NOOP
	NLMsgError   = 0x2 // NLMSG_ERROR
	NLMsgDone    = 0x3 // NLMSG_DONE
	NLMsgOverrun = 0x4 // NLMSG_OVERRUN

	FlagRequest  = 0x1    // NLM_F_REQUEST
	FlagMulti    = 0x2    // NLM_F_MULTI
	FlagAck      = 0x4    // NLM_F_ACK
	FlagCapped   = 0x100  // NLM_F_CAPPED
	FlagAckTLVs  = 0x200  // NLM_F_ACK_TLVS
	AttrNested   = 0x8000 // NLA_F_NESTED
	AttrNetOrder = 0x4000 // NLA_F_NET_BYTEORDER
	AttrTypeMask = 0x3fff // NLA_TYPE_MASK

	ErrAttrMsg  = 1 // NLMSGERR_ATTR_MSG
	ErrAttrOffs = 2 // NLMSGERR_ATTR_OFFS
)

// nfnetlink (include/uapi/linux/netfilter/nfnetlink.h).
const (
	NFNLSubsysQueue = 3 // NFNL_SUBSYS_QUEUE
	NFNetlinkV0     = 0 // NFNETLINK_V0
)

// Message types (enum nfqnl_msg_types, include/uapi/linux/netfilter/nfnetlink_queue.h).
const (
	MsgPacket       = 0 // NFQNL_MSG_PACKET
	MsgVerdict      = 1 // NFQNL_MSG_VERDICT
	MsgConfig       = 2 // NFQNL_MSG_CONFIG
	MsgVerdictBatch = 3 // NFQNL_MSG_VERDICT_BATCH
)

// Packet and verdict attributes (enum nfqnl_attr_type).
const (
	AttrPacketHdr      = 1  // NFQA_PACKET_HDR
	AttrVerdictHdr     = 2  // NFQA_VERDICT_HDR
	AttrMark           = 3  // NFQA_MARK
	AttrTimestamp      = 4  // NFQA_TIMESTAMP
	AttrIfIndexIn      = 5  // NFQA_IFINDEX_INDEV
	AttrIfIndexOut     = 6  // NFQA_IFINDEX_OUTDEV
	AttrIfIndexPhysIn  = 7  // NFQA_IFINDEX_PHYSINDEV
	AttrIfIndexPhysOut = 8  // NFQA_IFINDEX_PHYSOUTDEV
	AttrHwAddr         = 9  // NFQA_HWADDR
	AttrPayload        = 10 // NFQA_PAYLOAD
	AttrCT             = 11 // NFQA_CT
	AttrCTInfo         = 12 // NFQA_CT_INFO
	AttrCapLen         = 13 // NFQA_CAP_LEN
	AttrSkbInfo        = 14 // NFQA_SKB_INFO
	AttrExp            = 15 // NFQA_EXP
	AttrUID            = 16 // NFQA_UID
	AttrGID            = 17 // NFQA_GID
	AttrSecCtx         = 18 // NFQA_SECCTX
	AttrVLAN           = 19 // NFQA_VLAN
	AttrL2Hdr          = 20 // NFQA_L2HDR
	AttrPriority       = 21 // NFQA_PRIORITY
	AttrCgroupClassID  = 22 // NFQA_CGROUP_CLASSID
	AttrMax            = 22 // NFQA_MAX
)

// VLAN nested attributes (enum nfqnl_vlan_attr).
const (
	VLANAttrProto = 1 // NFQA_VLAN_PROTO
	VLANAttrTCI   = 2 // NFQA_VLAN_TCI
)

// Config attributes (enum nfqnl_attr_config).
const (
	CfgAttrCmd      = 1 // NFQA_CFG_CMD
	CfgAttrParams   = 2 // NFQA_CFG_PARAMS
	CfgAttrQueueMax = 3 // NFQA_CFG_QUEUE_MAXLEN
	CfgAttrMask     = 4 // NFQA_CFG_MASK
	CfgAttrFlags    = 5 // NFQA_CFG_FLAGS
)

// Config commands (enum nfqnl_msg_config_cmds).
const (
	CmdNone   = 0 // NFQNL_CFG_CMD_NONE
	CmdBind   = 1 // NFQNL_CFG_CMD_BIND
	CmdUnbind = 2 // NFQNL_CFG_CMD_UNBIND
)

// Copy modes (enum nfqnl_config_mode).
const (
	CopyNone   = 0 // NFQNL_COPY_NONE
	CopyMeta   = 1 // NFQNL_COPY_META
	CopyPacket = 2 // NFQNL_COPY_PACKET

	MaxCopyRange = 0xffff - AttrHdrLen // NFQNL_MAX_COPY_RANGE
)

// Queue flags (NFQA_CFG_F_*).
const (
	CfgFlagFailOpen  = 1 << 0 // NFQA_CFG_F_FAIL_OPEN
	CfgFlagConntrack = 1 << 1 // NFQA_CFG_F_CONNTRACK
	CfgFlagGSO       = 1 << 2 // NFQA_CFG_F_GSO
	CfgFlagUIDGID    = 1 << 3 // NFQA_CFG_F_UID_GID
	CfgFlagSecCtx    = 1 << 4 // NFQA_CFG_F_SECCTX
)

// Skb info flags (NFQA_SKB_*).
const (
	SkbCsumNotReady    = 1 << 0 // NFQA_SKB_CSUMNOTREADY
	SkbGSO             = 1 << 1 // NFQA_SKB_GSO
	SkbCsumNotVerified = 1 << 2 // NFQA_SKB_CSUM_NOTVERIFIED
)

// Verdicts (include/uapi/linux/netfilter.h).
const (
	NFDrop   = 0 // NF_DROP
	NFAccept = 1 // NF_ACCEPT
	NFStolen = 2 // NF_STOLEN
	NFQueue  = 3 // NF_QUEUE
	NFRepeat = 4 // NF_REPEAT
	NFStop   = 5 // NF_STOP

	VerdictMask       = 0x000000ff // NF_VERDICT_MASK
	VerdictFlagBypass = 0x00008000 // NF_VERDICT_FLAG_QUEUE_BYPASS
	VerdictQBits      = 16         // NF_VERDICT_QBITS
)

// Conntrack attributes used in verdicts (enum ctattr_type, include/uapi/linux/netfilter/nfnetlink_conntrack.h).
const (
	CTAMark       = 8  // CTA_MARK
	CTALabels     = 22 // CTA_LABELS
	CTALabelsMask = 23 // CTA_LABELS_MASK
)

// Protocol families in nfgenmsg (include/uapi/linux/netfilter.h).
const (
	ProtoUnspec = 0  // NFPROTO_UNSPEC
	ProtoIPv4   = 2  // NFPROTO_IPV4
	ProtoBridge = 7  // NFPROTO_BRIDGE
	ProtoIPv6   = 10 // NFPROTO_IPV6
)
