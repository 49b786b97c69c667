package nfqueue

import (
	"fmt"
	"time"

	"github.com/nfqueue-go/nfqueue/internal/wire"
)

// CopyMode says how much of each packet the kernel copies to userspace.
type CopyMode uint8

// Copy modes. The zero value copies packets.
const (
	// CopyPacket copies metadata and the packet, up to Config.CopyRange
	// bytes (NFQNL_COPY_PACKET).
	CopyPacket CopyMode = iota
	// CopyMeta copies metadata only; Packet.Payload is empty (NFQNL_COPY_META).
	CopyMeta
	// CopyNone is the kernel's mode after a bare bind, in which it drops
	// every packet (NFQNL_COPY_NONE). Open refuses it.
	CopyNone
)

func (m CopyMode) String() string {
	switch m {
	case CopyPacket:
		return "packet"
	case CopyMeta:
		return "meta"
	case CopyNone:
		return "none"
	}
	return fmt.Sprintf("copymode(%d)", uint8(m))
}

// MaxCopyRange is the largest copy range the kernel honours
// (NFQNL_MAX_COPY_RANGE): 65535 minus an attribute header.
const MaxCopyRange = wire.MaxCopyRange

// MaxPayload is the largest replacement payload a verdict can carry: the
// 16-bit attribute length counts its own 4-byte header.
const MaxPayload = 0xffff - wire.AttrHdrLen

// Config configures a queue. A nil *Config and the zero Config are the
// same: whole packets are copied, GSO packets arrive unsegmented, the
// kernel's queue length (1024) applies, the receive buffer is sized for a
// full queue, and Serve batches verdicts.
type Config struct {
	// CopyMode is how much of each packet to copy; the zero value copies
	// packets (CopyPacket).
	CopyMode CopyMode
	// CopyRange is the most payload bytes to copy per packet with
	// CopyPacket. 0 means MaxCopyRange. Larger packets (GSO, BIG TCP)
	// arrive truncated; see Packet.Truncated.
	CopyRange uint32
	// MaxQueueLen is how many packets the kernel holds waiting for a
	// verdict before it drops (or, with FailOpen, accepts) new ones.
	// 0 keeps the kernel's default of 1024.
	MaxQueueLen uint32
	// FailOpen accepts packets instead of dropping them when the queue is
	// full and, since Linux 4.6, when the socket buffer is (Linux 3.6).
	FailOpen bool
	// Conntrack asks for the conntrack entry of each packet (Packet.Conntrack,
	// Packet.CtInfo). It needs nf_conntrack_netlink and a kernel built with
	// CONFIG_NETFILTER_NETLINK_GLUE_CT; other kernels make Open fail with
	// ErrNotSupported. Setting the connmark in a verdict does not need it
	// (Linux 3.6).
	Conntrack bool
	// UIDGID asks for the UID and GID of the local socket that sent each
	// packet, where there is one (Linux 3.14).
	UIDGID bool
	// SecCtx asks for the LSM security context of each packet; kernels
	// without CONFIG_NETWORK_SECMARK make Open fail with ErrNotSupported
	// (Linux 4.2).
	SecCtx bool
	// DisableGSO makes the kernel segment GSO packets and fill in
	// checksums before queueing them. By default (false) packets arrive
	// unsegmented, which is faster but lets them exceed the MTU (Linux 3.10).
	DisableGSO bool

	// ReadBufferSize is the socket receive buffer to ask for. 0 sizes it
	// for a full queue: MaxQueueLen × (copy range + 800 bytes), at most
	// 64 MiB. A negative value keeps the system default. It is set with
	// SO_RCVBUFFORCE, falling back to SO_RCVBUF (capped by
	// net.core.rmem_max) without CAP_NET_ADMIN.
	ReadBufferSize int
	// NoENOBUFS stops the kernel from reporting receive buffer overruns
	// (NETLINK_NO_ENOBUFS). Packets are still lost on overrun; the kernel's
	// counter (Stats) still shows them. Off by default so overruns are
	// counted by this package too.
	NoENOBUFS bool
	// NetNS is the path of a network namespace to open the queue in, such
	// as /run/netns/NAME, /proc/PID/ns/net, or /proc/self/fd/N for a
	// namespace held by a file descriptor. Empty means the caller's.
	NetNS string
	// BindRetry keeps retrying a bind refused because another socket owns
	// the queue, for up to this long. A restarted consumer needs this: the
	// kernel releases the queue of a killed process some milliseconds
	// after it died. 0 fails at once.
	BindRetry time.Duration
	// DisableBatching makes Serve send each verdict with its own sendmsg
	// as soon as the handler returns. By default Serve sends the verdicts
	// of the packets of one receive (up to 64) together, with one
	// VERDICT_BATCH when they are alike; under load that is about 1.8
	// times the packets per second of one sendmsg per verdict.
	DisableBatching bool
	// VerdictTimeout, if positive, gives a packet that has waited this long
	// without a verdict (deferred by a Serve handler, or read with
	// ReadPacket and not answered) the verdict TimeoutVerdict, so that no
	// packet waits forever. Packets are checked every VerdictTimeout/4, so
	// one may wait up to 1.25×VerdictTimeout. It starts one goroutine,
	// stopped by Close. Stats.Timeouts counts these verdicts.
	VerdictTimeout time.Duration
	// TimeoutVerdict is the verdict VerdictTimeout gives; the zero value is
	// Drop. It may carry a mark and a priority, no other option.
	TimeoutVerdict Verdict
	// BusyPoll makes Serve and ReadPacket poll the socket without ever
	// sleeping in the kernel: it saves the wake-up of an idle CPU (tens of
	// microseconds per packet when traffic is sparse) at the cost of a
	// whole CPU core spinning. Off by default.
	BusyPoll bool
	// OnError, if set, is called with errors that end nothing: by Serve for
	// overruns, verdict errors returned by the kernel, malformed messages
	// and invalid verdicts; by the VerdictTimeout goroutine when it cannot
	// send. It runs on those goroutines and must not block; it may call
	// Close.
	OnError func(error)
}

// copyRange returns the effective copy range.
func (c *Config) copyRange() uint32 {
	if c.CopyMode == CopyMeta {
		return 0
	}
	if c.CopyRange == 0 {
		return MaxCopyRange
	}
	return c.CopyRange
}

// queueLen returns the effective queue length.
func (c *Config) queueLen() uint32 {
	if c.MaxQueueLen == 0 {
		return 1024
	}
	return c.MaxQueueLen
}

const maxAutoReadBuffer = 64 << 20

// readBuffer returns the receive buffer size to ask for, 0 for the default.
func (c *Config) readBuffer() int {
	switch {
	case c.ReadBufferSize < 0:
		return 0
	case c.ReadBufferSize > 0:
		return c.ReadBufferSize
	}
	n := uint64(c.queueLen()) * (uint64(c.copyRange()) + 800)
	if n > maxAutoReadBuffer {
		n = maxAutoReadBuffer
	}
	return int(n)
}

// validate checks c before anything reaches the kernel.
func (c *Config) validate() error {
	switch {
	case c.CopyMode == CopyNone:
		return fmt.Errorf("%w: CopyNone makes the kernel drop every packet", ErrInvalidConfig)
	case c.CopyMode > CopyNone:
		return fmt.Errorf("%w: unknown copy mode %d", ErrInvalidConfig, c.CopyMode)
	case c.CopyRange > MaxCopyRange:
		return fmt.Errorf("%w: copy range %d over the maximum %d", ErrInvalidConfig, c.CopyRange, MaxCopyRange)
	case c.CopyMode == CopyMeta && c.CopyRange != 0:
		return fmt.Errorf("%w: copy range set with CopyMeta", ErrInvalidConfig)
	case c.BindRetry < 0:
		return fmt.Errorf("%w: negative BindRetry", ErrInvalidConfig)
	case c.VerdictTimeout < 0:
		return fmt.Errorf("%w: negative VerdictTimeout", ErrInvalidConfig)
	case c.VerdictTimeout > 0 && c.VerdictTimeout < time.Millisecond:
		return fmt.Errorf("%w: VerdictTimeout %v under 1ms", ErrInvalidConfig, c.VerdictTimeout)
	case c.TimeoutVerdict.check(false) != nil || !c.TimeoutVerdict.batchable():
		return fmt.Errorf("%w: TimeoutVerdict %v: a plain verdict with at most a mark and a priority is needed", ErrInvalidConfig, c.TimeoutVerdict)
	case c.ReadBufferSize > 1<<30:
		return fmt.Errorf("%w: read buffer %d over 1 GiB", ErrInvalidConfig, c.ReadBufferSize)
	}
	return nil
}

// flags returns the NFQA_CFG_F_* flags and the mask to send.
func (c *Config) flags() (flags, mask uint32) {
	mask = wire.CfgFlagFailOpen | wire.CfgFlagConntrack | wire.CfgFlagGSO | wire.CfgFlagUIDGID | wire.CfgFlagSecCtx
	set := func(on bool, f uint32) {
		if on {
			flags |= f
		}
	}
	set(c.FailOpen, wire.CfgFlagFailOpen)
	set(c.Conntrack, wire.CfgFlagConntrack)
	set(!c.DisableGSO, wire.CfgFlagGSO)
	set(c.UIDGID, wire.CfgFlagUIDGID)
	set(c.SecCtx, wire.CfgFlagSecCtx)
	return flags, mask
}

// bindMsg returns the CONFIG request that binds and configures queue.
func (c *Config) bindMsg(queue uint16) wire.Config {
	mode := uint8(wire.CopyPacket)
	if c.CopyMode == CopyMeta {
		mode = wire.CopyMeta
	}
	flags, mask := c.flags()
	return wire.Config{
		Queue:     queue,
		HasCmd:    true,
		Cmd:       wire.CmdBind,
		HasParams: true,
		CopyMode:  mode,
		CopyRange: c.copyRange(),
		MaxLen:    c.MaxQueueLen,
		Mask:      mask,
		Flags:     flags,
	}
}
