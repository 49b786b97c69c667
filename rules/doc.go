// Package rules installs and removes NFQUEUE rules through netlink, without
// the iptables or nft binaries.
//
// Everything the package creates lives in one nftables table of its own
// (named by [Config.Table], "nfqueue" by default), with its own base chains,
// so the rules of the user and of other programs are never touched. [Open]
// creates the table, [Table.Add] adds chains and rules to it, and
// [Table.Close] deletes the table with everything in it.
//
//	t, err := rules.Open(nil)
//	if err != nil {
//		return err
//	}
//	defer t.Close()
//	m, err := rules.ParseMatch("udp dport 53")
//	if err != nil {
//		return err
//	}
//	err = t.Add(rules.Chain{Hook: rules.HookInput},
//		rules.Rule{Match: m, Queue: rules.Queue{Num: 0, Flags: rules.QueueBypass}})
//
// # Queue backends
//
// A rule sends packets to a queue with the nftables "queue" expression where
// the kernel has it (nft_queue), and otherwise with the xtables NFQUEUE target
// (revision 3) carried by nft_compat, which is what iptables-nft does. Both
// give the same behaviour: a queue number or a balanced range of queues, and
// the bypass and CPU fanout flags. [Open] probes which one the kernel accepts
// in a throw-away table that is created and deleted in the same atomic batch,
// so the probe leaves nothing behind; [Table.Backend] reports the choice.
// nft lists rules of the xtables backend as "queue num N" too, with a
// warning that the table is managed by iptables-nft.
//
// # Table families
//
// The table is of the inet family by default, so one rule covers IPv4 and
// IPv6. If nft_compat refuses the inet family, the package keeps one
// ip and one ip6 table of the same name instead and installs each rule in the
// tables whose family it can match; this stays invisible to the caller except
// through [RuleInfo.Family] and [Table.Families].
//
// # Privileges and namespaces
//
// Changing nftables needs CAP_NET_ADMIN in the network namespace the table
// lives in. [Config.NetNSFd] and [Config.NetNSPath] place the table in
// another network namespace; nothing is changed in the caller's own one then.
//
// # Matches
//
// A [Match] is a conjunction of optional parts: address family, layer 4
// protocol (nft "meta l4proto"), source and destination address or prefix,
// source and destination port or port range (TCP, UDP, UDP-Lite and SCTP),
// input and output interface name, packet mark and connection mark compared
// for equality or inequality under a mask. [ParseMatch] reads the same parts
// from an nft-like string such as "ip saddr 10.0.0.1 udp dport 53"; the
// String method of a Match gives back a string that ParseMatch accepts.
//
// # Flow bypass
//
// Besides queueing, a rule can accept, drop, copy the packet mark into the
// connection mark ([ActionSaveMark], like "CONNMARK --save-mark") or copy the
// connection mark into the packet mark ([ActionRestoreMark]). With these a
// program can let a flow skip the queue after one verdict: the verdict sets a
// packet mark, a rule in a later chain saves it into the connection mark,
// and a rule before the queue rule accepts packets whose connection mark is
// set.
package rules
