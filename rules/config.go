package rules

import (
	"fmt"
	"strings"
)

// DefaultTable is the table name used when [Config.Table] is empty.
const DefaultTable = "nfqueue"

// maxTableName leaves room under NFT_NAME_MAXLEN (256 with the NUL) for
// the suffix of the throw-away probe table.
const maxTableName = 200

// Config says where [Open] puts the package's table. A nil *Config or the
// zero value means: table "nfqueue", family inet, backend probed, in the
// caller's network namespace, and fail if the table already exists.
type Config struct {
	// Table is the name of the package's table; empty means DefaultTable.
	// Two programs that install rules at the same time need different
	// names (e.g. with the process id in them).
	Table string

	// Family is the table family: FamilyInet (the zero value: one table
	// for IPv4 and IPv6), FamilyIPv4 or FamilyIPv6. Rules that cannot
	// apply to the family (an IPv6 address in an ip table) are refused.
	Family Family

	// Backend forces the queue backend; BackendAuto (the zero value)
	// probes the kernel for the nft queue expression and falls back to the
	// xtables NFQUEUE target. A forced backend is still probed, so that
	// Open fails at once if the kernel lacks it.
	Backend Backend

	// NetNSFd is an open file descriptor of a network namespace (e.g. of
	// /run/netns/NAME or /proc/PID/ns/net) to put the table in. Zero means
	// the caller's namespace. The caller keeps the descriptor open while
	// the Table is in use; Open does not take it over.
	NetNSFd int

	// NetNSPath is the path of a network namespace to put the table in,
	// opened by Open and closed by Close. It is used when NetNSFd is zero.
	NetNSPath string

	// Replace deletes a table of the same name and family that already
	// exists, such as one left behind by a program that was killed,
	// instead of failing with ErrTableExists. Only set it for a name that
	// belongs to this program: a Table still open on the old table would
	// delete the new one when it is closed.
	Replace bool
}

func (c *Config) validate() error {
	if c.Table == "" {
		c.Table = DefaultTable
	}
	if len(c.Table) > maxTableName || strings.ContainsRune(c.Table, 0) {
		return fmt.Errorf("%w: invalid table name %q", ErrInvalidRule, c.Table)
	}
	if c.Family > FamilyIPv6 {
		return fmt.Errorf("%w: unknown table family %v", ErrInvalidRule, c.Family)
	}
	if c.Backend > BackendXtTarget {
		return fmt.Errorf("%w: unknown backend %v", ErrInvalidRule, c.Backend)
	}
	if c.NetNSFd < 0 {
		return fmt.Errorf("%w: negative network namespace descriptor %d", ErrInvalidRule, c.NetNSFd)
	}
	return nil
}

// RuleInfo describes one installed rule, as listed by [Table.Rules].
type RuleInfo struct {
	// Family is the family of the nftables table holding the rule.
	Family Family
	// Chain is the name of the chain holding the rule.
	Chain string
	// Handle is the kernel's handle of the rule, unique in its table.
	Handle uint64
	// Comment is the rule's comment: Rule.Comment, or else Rule.String.
	Comment string
	// Packets and Bytes are the rule's counters: the packets it acted on.
	Packets uint64
	Bytes   uint64
}

// String returns e.g. "inet input #4 udp dport 53 queue num 0 (3 packets)".
func (ri RuleInfo) String() string {
	return fmt.Sprintf("%v %s #%d %s (%d packets, %d bytes)", ri.Family, ri.Chain, ri.Handle, ri.Comment, ri.Packets, ri.Bytes)
}
