package nfqueue

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"sync/atomic"
)

// Stats are a Conn's counters together with the kernel's line for its queue.
type Stats struct {
	Received      uint64 // packets delivered
	Accepted      uint64 // verdicts by kind, batch verdicts counted per packet
	Dropped       uint64
	Queued        uint64
	Repeated      uint64
	Stopped       uint64
	BatchVerdicts uint64 // VERDICT_BATCH messages sent
	Outstanding   int    // packets delivered and still without verdict
	Timeouts      uint64 // packets given the default verdict by VerdictTimeout
	Overruns      uint64 // ENOBUFS events: the kernel dropped packets for lack of buffer
	Truncated     uint64 // packets whose payload was cut to the copy range
	Malformed     uint64 // messages that could not be decoded
	VerdictErrors uint64 // errors the kernel returned for verdicts
	ReadBuffer    int    // receive buffer the kernel granted (SO_RCVBUF, doubled for its bookkeeping)

	// Kernel is the queue's line of /proc/net/netfilter/nfnetlink_queue,
	// valid when KernelErr is nil. It is unreadable in an unprivileged
	// user namespace.
	Kernel    KernelStats
	KernelErr error
}

// KernelStats is one line of /proc/net/netfilter/nfnetlink_queue.
type KernelStats struct {
	Queue        uint16
	PortID       uint32 // netlink port id of the owning socket
	Waiting      uint32 // packets waiting for a verdict
	CopyMode     uint8  // kernel value: 0 none, 1 meta, 2 packet
	CopyRange    uint32
	QueueDropped uint32 // dropped because the queue was full
	UserDropped  uint32 // dropped because the socket buffer was full
	LastID       uint32 // id of the last packet queued
}

type counters struct {
	received, batches, timeouts, overruns, truncated, malformed, verdictErrors atomic.Uint64
	byKind                                                                     [6]atomic.Uint64 // indexed by VerdictKind
}

func (c *counters) countVerdict(k VerdictKind, n uint64) {
	if int(k) < len(c.byKind) {
		c.byKind[k].Add(n)
	}
}

func (c *counters) fill(s *Stats) {
	s.Received = c.received.Load()
	s.Dropped = c.byKind[KindDrop].Load()
	s.Accepted = c.byKind[KindAccept].Load()
	s.Queued = c.byKind[KindQueue].Load()
	s.Repeated = c.byKind[KindRepeat].Load()
	s.Stopped = c.byKind[KindStop].Load()
	s.BatchVerdicts = c.batches.Load()
	s.Timeouts = c.timeouts.Load()
	s.Overruns = c.overruns.Load()
	s.Truncated = c.truncated.Load()
	s.Malformed = c.malformed.Load()
	s.VerdictErrors = c.verdictErrors.Load()
}

// parseKernelStats parses the content of /proc/net/netfilter/nfnetlink_queue.
func parseKernelStats(b []byte) ([]KernelStats, error) {
	var out []KernelStats
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		f := bytes.Fields(sc.Bytes())
		if len(f) == 0 {
			continue
		}
		if len(f) < 8 {
			return nil, fmt.Errorf("nfnetlink_queue line %d: %d fields", line, len(f))
		}
		var v [8]uint64
		for i := range v {
			n, err := strconv.ParseUint(string(f[i]), 10, 32)
			if err != nil {
				return nil, fmt.Errorf("nfnetlink_queue line %d: %v", line, err)
			}
			v[i] = n
		}
		if v[0] > 0xffff || v[3] > 0xff {
			return nil, fmt.Errorf("nfnetlink_queue line %d: value out of range", line)
		}
		out = append(out, KernelStats{
			Queue: uint16(v[0]), PortID: uint32(v[1]), Waiting: uint32(v[2]), CopyMode: uint8(v[3]),
			CopyRange: uint32(v[4]), QueueDropped: uint32(v[5]), UserDropped: uint32(v[6]), LastID: uint32(v[7]),
		})
	}
	return out, sc.Err()
}

// parseCapEff returns the CapEff mask from /proc/self/status.
func parseCapEff(status []byte) uint64 {
	for _, line := range bytes.Split(status, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("CapEff:")); ok {
			n, _ := strconv.ParseUint(string(bytes.TrimSpace(v)), 16, 64)
			return n
		}
	}
	return 0
}
