// Package nfqgopacket connects queued packets of package nfqueue to
// github.com/gopacket/gopacket: decoding with the right first layer, a
// zero-allocation decoder, and re-serialization with fixed lengths and
// checksums for Verdict.WithPayload.
//
// # What the kernel hands out
//
// Packet.Payload starts at the network header in every family. For the
// IPv4 and IPv6 families the first layer is therefore IPv4 or IPv6. For
// the bridge family the payload still starts at the network header (IPv4,
// IPv6, ARP, ... as Packet.HwProtocol says), and the Ethernet header comes
// separately in Packet.L2Header (NFQA_L2HDR); a VLAN tag the NIC or the
// stack took off the frame is in Packet.VLAN, not in L2Header. For such a
// packet FirstLayer says Ethernet, Decode joins L2Header and Payload into
// one frame, and the Parser decodes the two parts in place.
//
// # Three ways to decode
//
//   - Decode returns a gopacket.Packet: the whole of gopacket's decoding, at
//     the cost of allocating the layers.
//   - Parser decodes Ethernet, IPv4, IPv6, TCP, UDP, ICMPv4, ICMPv6 and the
//     application payload into layers it owns, without allocating. One
//     Parser per goroutine (per queue when serving an nfqueue.Set).
//   - FirstLayer gives the layer type to start from, for callers who drive
//     gopacket themselves.
//
// # Rewriting
//
// A replacement payload (nfqueue.Verdict.WithPayload) replaces the packet
// from its network header, and the kernel does not fix its checksums.
// Serialize serializes layers with lengths and checksums fixed, pointing
// each transport layer at the network layer before it for its
// pseudo-header checksum. Rewrite and Parser.Rewrite decode a packet, let
// the caller change its application payload (and header fields), and
// return an Accept verdict carrying the re-serialized packet. They refuse a
// truncated packet with an error that matches nfqueue.ErrInvalidVerdict,
// as package nfqueue refuses WithPayload for one: its end never reached
// userspace, so a replacement would cut the packet short.
//
// Two kernel facts matter when rewriting. A TCP payload that changes length
// needs the kernel's sequence adjustment, which runs only when the verdict
// also carries NFQA_CT: package nfqueue adds one to every verdict with a
// payload, and kernels built with CONFIG_NETFILTER_NETLINK_GLUE_CT then
// adjust; on other kernels keep TCP payload lengths unchanged. And with
// GSO on (the default) a queued TCP packet may
// be a super-packet of up to 64 KiB whose checksum the kernel has not yet
// filled in (Packet.SkbInfo.ChecksumNotReady): verifying its checksum
// fails, and a rewritten packet always carries a full checksum.
//
// The package is a module of its own, so that package nfqueue does not
// depend on gopacket: go get github.com/nfqueue-go/nfqueue/nfqgopacket.
package nfqgopacket
