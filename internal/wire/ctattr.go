package wire

// Conntrack entry attributes, nested in NFQA_CT (enum ctattr_type,
// include/uapi/linux/netfilter/nfnetlink_conntrack.h). Values are
// big-endian. CTA_MARK, CTA_LABELS and CTA_LABELS_MASK are in consts.go.
const (
	CTATupleOrig      = 1  // CTA_TUPLE_ORIG, nested ctattr_tuple
	CTATupleReply     = 2  // CTA_TUPLE_REPLY, nested ctattr_tuple
	CTAStatus         = 3  // CTA_STATUS, be32 IPS_* bits
	CTAProtoInfo      = 4  // CTA_PROTOINFO, nested ctattr_protoinfo
	CTAHelp           = 5  // CTA_HELP, nested ctattr_help
	CTANatSrc         = 6  // CTA_NAT_SRC
	CTATimeout        = 7  // CTA_TIMEOUT, be32 seconds
	CTACountersOrig   = 9  // CTA_COUNTERS_ORIG, nested ctattr_counters
	CTACountersReply  = 10 // CTA_COUNTERS_REPLY, nested ctattr_counters
	CTAUse            = 11 // CTA_USE, be32 reference count
	CTAID             = 12 // CTA_ID, be32
	CTANatDst         = 13 // CTA_NAT_DST
	CTATupleMaster    = 14 // CTA_TUPLE_MASTER, nested ctattr_tuple
	CTASeqAdjOrig     = 15 // CTA_SEQ_ADJ_ORIG (CTA_NAT_SEQ_ADJ_ORIG)
	CTASeqAdjReply    = 16 // CTA_SEQ_ADJ_REPLY (CTA_NAT_SEQ_ADJ_REPLY)
	CTASecmark        = 17 // CTA_SECMARK, obsolete
	CTAZone           = 18 // CTA_ZONE, be16
	CTASecCtx         = 19 // CTA_SECCTX, nested ctattr_secctx
	CTATimestamp      = 20 // CTA_TIMESTAMP, nested ctattr_tstamp
	CTAMarkMask       = 21 // CTA_MARK_MASK
	CTASynproxy       = 24 // CTA_SYNPROXY
	CTAFilter         = 25 // CTA_FILTER
	CTAStatusMask     = 26 // CTA_STATUS_MASK
	CTATimestampEvent = 27 // CTA_TIMESTAMP_EVENT
)

// Tuple attributes (enum ctattr_tuple).
const (
	CTATupleIP    = 1 // CTA_TUPLE_IP, nested ctattr_ip
	CTATupleProto = 2 // CTA_TUPLE_PROTO, nested ctattr_l4proto
	CTATupleZone  = 3 // CTA_TUPLE_ZONE, be16
)

// Address attributes (enum ctattr_ip).
const (
	CTAIPv4Src = 1 // CTA_IP_V4_SRC, 4 bytes
	CTAIPv4Dst = 2 // CTA_IP_V4_DST, 4 bytes
	CTAIPv6Src = 3 // CTA_IP_V6_SRC, 16 bytes
	CTAIPv6Dst = 4 // CTA_IP_V6_DST, 16 bytes
)

// Layer 4 tuple attributes (enum ctattr_l4proto).
const (
	CTAProtoNum        = 1 // CTA_PROTO_NUM, u8
	CTAProtoSrcPort    = 2 // CTA_PROTO_SRC_PORT, be16
	CTAProtoDstPort    = 3 // CTA_PROTO_DST_PORT, be16
	CTAProtoICMPID     = 4 // CTA_PROTO_ICMP_ID, be16
	CTAProtoICMPType   = 5 // CTA_PROTO_ICMP_TYPE, u8
	CTAProtoICMPCode   = 6 // CTA_PROTO_ICMP_CODE, u8
	CTAProtoICMPv6ID   = 7 // CTA_PROTO_ICMPV6_ID, be16
	CTAProtoICMPv6Type = 8 // CTA_PROTO_ICMPV6_TYPE, u8
	CTAProtoICMPv6Code = 9 // CTA_PROTO_ICMPV6_CODE, u8
)

// Protocol state attributes (enum ctattr_protoinfo).
const (
	CTAProtoInfoTCP  = 1 // CTA_PROTOINFO_TCP, nested ctattr_protoinfo_tcp
	CTAProtoInfoDCCP = 2 // CTA_PROTOINFO_DCCP
	CTAProtoInfoSCTP = 3 // CTA_PROTOINFO_SCTP
)

// TCP state attributes (enum ctattr_protoinfo_tcp).
const (
	CTAProtoInfoTCPState       = 1 // CTA_PROTOINFO_TCP_STATE, u8 enum tcp_conntrack
	CTAProtoInfoTCPWScaleOrig  = 2 // CTA_PROTOINFO_TCP_WSCALE_ORIGINAL, u8
	CTAProtoInfoTCPWScaleReply = 3 // CTA_PROTOINFO_TCP_WSCALE_REPLY, u8
	CTAProtoInfoTCPFlagsOrig   = 4 // CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, struct nf_ct_tcp_flags
	CTAProtoInfoTCPFlagsReply  = 5 // CTA_PROTOINFO_TCP_FLAGS_REPLY, struct nf_ct_tcp_flags
)

// Helper attributes (enum ctattr_help).
const (
	CTAHelpName = 1 // CTA_HELP_NAME, NUL-terminated string
	CTAHelpInfo = 2 // CTA_HELP_INFO
)

// Security context attributes (enum ctattr_secctx).
const (
	CTASecCtxName = 1 // CTA_SECCTX_NAME, NUL-terminated string
)
