package nfqueue

import (
	"strconv"
	"strings"

	"github.com/nfqueue-go/nfqueue/internal/wire"
)

// Family is the protocol family of the hook a packet was queued from
// (NFPROTO_*).
type Family uint8

// Protocol families.
const (
	FamilyUnspec Family = wire.ProtoUnspec // NFPROTO_UNSPEC
	FamilyIPv4   Family = wire.ProtoIPv4   // NFPROTO_IPV4
	FamilyBridge Family = wire.ProtoBridge // NFPROTO_BRIDGE
	FamilyIPv6   Family = wire.ProtoIPv6   // NFPROTO_IPV6
)

func (f Family) String() string {
	switch f {
	case FamilyUnspec:
		return "unspec"
	case FamilyIPv4:
		return "ipv4"
	case FamilyBridge:
		return "bridge"
	case FamilyIPv6:
		return "ipv6"
	case 1:
		return "inet"
	case 3:
		return "arp"
	case 5:
		return "netdev"
	}
	return "family(" + strconv.Itoa(int(f)) + ")"
}

// Hook is the netfilter hook a packet was queued from. The values are those
// of the inet and bridge families (NF_INET_*, NF_BR_*).
type Hook uint8

// Hooks.
const (
	HookPrerouting  Hook = 0 // NF_INET_PRE_ROUTING
	HookInput       Hook = 1 // NF_INET_LOCAL_IN
	HookForward     Hook = 2 // NF_INET_FORWARD
	HookOutput      Hook = 3 // NF_INET_LOCAL_OUT
	HookPostrouting Hook = 4 // NF_INET_POST_ROUTING
)

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
	return "hook(" + strconv.Itoa(int(h)) + ")"
}

// Attr identifies an attribute of a queued packet (NFQA_*).
type Attr uint16

// Packet attributes.
const (
	AttrPacketHdr     Attr = wire.AttrPacketHdr      // NFQA_PACKET_HDR
	AttrMark          Attr = wire.AttrMark           // NFQA_MARK
	AttrTimestamp     Attr = wire.AttrTimestamp      // NFQA_TIMESTAMP
	AttrInDev         Attr = wire.AttrIfIndexIn      // NFQA_IFINDEX_INDEV
	AttrOutDev        Attr = wire.AttrIfIndexOut     // NFQA_IFINDEX_OUTDEV
	AttrPhysInDev     Attr = wire.AttrIfIndexPhysIn  // NFQA_IFINDEX_PHYSINDEV
	AttrPhysOutDev    Attr = wire.AttrIfIndexPhysOut // NFQA_IFINDEX_PHYSOUTDEV
	AttrHwAddr        Attr = wire.AttrHwAddr         // NFQA_HWADDR
	AttrPayload       Attr = wire.AttrPayload        // NFQA_PAYLOAD
	AttrConntrack     Attr = wire.AttrCT             // NFQA_CT
	AttrCtInfo        Attr = wire.AttrCTInfo         // NFQA_CT_INFO
	AttrCapLen        Attr = wire.AttrCapLen         // NFQA_CAP_LEN
	AttrSkbInfo       Attr = wire.AttrSkbInfo        // NFQA_SKB_INFO
	AttrExp           Attr = wire.AttrExp            // NFQA_EXP
	AttrUID           Attr = wire.AttrUID            // NFQA_UID
	AttrGID           Attr = wire.AttrGID            // NFQA_GID
	AttrSecCtx        Attr = wire.AttrSecCtx         // NFQA_SECCTX
	AttrVLAN          Attr = wire.AttrVLAN           // NFQA_VLAN
	AttrL2Header      Attr = wire.AttrL2Hdr          // NFQA_L2HDR
	AttrPriority      Attr = wire.AttrPriority       // NFQA_PRIORITY
	AttrCgroupClassID Attr = wire.AttrCgroupClassID  // NFQA_CGROUP_CLASSID
)

var attrNames = [...]string{
	AttrPacketHdr:       "packet-hdr",
	wire.AttrVerdictHdr: "verdict-hdr",
	AttrMark:            "mark",
	AttrTimestamp:       "timestamp",
	AttrInDev:           "indev",
	AttrOutDev:          "outdev",
	AttrPhysInDev:       "physindev",
	AttrPhysOutDev:      "physoutdev",
	AttrHwAddr:          "hwaddr",
	AttrPayload:         "payload",
	AttrConntrack:       "ct",
	AttrCtInfo:          "ct-info",
	AttrCapLen:          "cap-len",
	AttrSkbInfo:         "skb-info",
	AttrExp:             "exp",
	AttrUID:             "uid",
	AttrGID:             "gid",
	AttrSecCtx:          "secctx",
	AttrVLAN:            "vlan",
	AttrL2Header:        "l2hdr",
	AttrPriority:        "priority",
	AttrCgroupClassID:   "cgroup-classid",
}

func (a Attr) String() string {
	if int(a) < len(attrNames) && attrNames[a] != "" {
		return attrNames[a]
	}
	return "attr(" + strconv.Itoa(int(a)) + ")"
}

// AttrSet is a set of attributes, one bit per attribute type below 64.
type AttrSet uint64

// Has reports whether a is in the set.
func (s AttrSet) Has(a Attr) bool { return a < 64 && s&(1<<a) != 0 }

// Add puts a in the set, e.g. to mark a hand-built Packet's fields as
// present in tests.
func (s *AttrSet) Add(a Attr) {
	if a < 64 {
		*s |= 1 << a
	}
}

func (s AttrSet) String() string {
	var b strings.Builder
	for a := Attr(0); a < 64; a++ {
		if s.Has(a) {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(a.String())
		}
	}
	return b.String()
}

// SkbInfo holds the NFQA_SKB_INFO flags of a packet.
type SkbInfo uint32

// SkbInfo flags.
const (
	// SkbCsumNotReady: the checksums are not filled in yet (CHECKSUM_PARTIAL);
	// they look wrong but are valid (NFQA_SKB_CSUMNOTREADY).
	SkbCsumNotReady SkbInfo = wire.SkbCsumNotReady
	// SkbGSO: a GSO super-packet, possibly larger than the MTU (NFQA_SKB_GSO).
	SkbGSO SkbInfo = wire.SkbGSO
	// SkbCsumNotVerified: an incoming packet whose checksum nobody has
	// verified yet (NFQA_SKB_CSUM_NOTVERIFIED).
	SkbCsumNotVerified SkbInfo = wire.SkbCsumNotVerified
)

// ChecksumNotReady reports SkbCsumNotReady.
func (s SkbInfo) ChecksumNotReady() bool { return s&SkbCsumNotReady != 0 }

// GSO reports SkbGSO.
func (s SkbInfo) GSO() bool { return s&SkbGSO != 0 }

// ChecksumNotVerified reports SkbCsumNotVerified.
func (s SkbInfo) ChecksumNotVerified() bool { return s&SkbCsumNotVerified != 0 }

func (s SkbInfo) String() string {
	var parts []string
	if s.ChecksumNotReady() {
		parts = append(parts, "csum-not-ready")
	}
	if s.GSO() {
		parts = append(parts, "gso")
	}
	if s.ChecksumNotVerified() {
		parts = append(parts, "csum-not-verified")
	}
	if rest := s &^ (SkbCsumNotReady | SkbGSO | SkbCsumNotVerified); rest != 0 {
		parts = append(parts, "0x"+strconv.FormatUint(uint64(rest), 16))
	}
	return strings.Join(parts, ",")
}

// CtInfo is the conntrack state of a packet (enum ip_conntrack_info).
type CtInfo uint32

// Conntrack states.
const (
	CtEstablished      CtInfo = 0 // IP_CT_ESTABLISHED
	CtRelated          CtInfo = 1 // IP_CT_RELATED
	CtNew              CtInfo = 2 // IP_CT_NEW
	CtEstablishedReply CtInfo = 3 // IP_CT_ESTABLISHED_REPLY
	CtRelatedReply     CtInfo = 4 // IP_CT_RELATED_REPLY
	CtUntracked        CtInfo = 7 // IP_CT_UNTRACKED
)

func (c CtInfo) String() string {
	switch c {
	case CtEstablished:
		return "established"
	case CtRelated:
		return "related"
	case CtNew:
		return "new"
	case CtEstablishedReply:
		return "established-reply"
	case CtRelatedReply:
		return "related-reply"
	case CtUntracked:
		return "untracked"
	}
	return "ctinfo(" + strconv.Itoa(int(c)) + ")"
}
