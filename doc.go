// Package nfqueue receives the packets that Linux netfilter queues to
// userspace (the NFQUEUE target of iptables, the queue statement of nft)
// and gives each one a verdict. It is pure Go: no cgo, no system library,
// its own netlink code on top of golang.org/x/sys/unix.
//
//	conn, err := nfqueue.Open(0, nil) // queue 0: --queue-num 0
//	if err != nil { ... }
//	defer conn.Close()
//	err = conn.Serve(ctx, func(p *nfqueue.Packet) nfqueue.Verdict {
//		if bad(p.Payload) {
//			return nfqueue.Drop
//		}
//		return nfqueue.Accept.WithMark(7)
//	})
//
// Open binds the queue and configures it in one acknowledged request. Serve
// runs the handler for every packet; ReadPacket and SetVerdict are the
// same thing for callers that run their own loop.
//
// # Privileges
//
// Binding a queue needs CAP_NET_ADMIN in the user namespace that owns the
// network namespace; root is not required. A binary can be given the
// capability with
//
//	setcap cap_net_admin+ep ./mybinary
//
// and a program may open its queues first and drop privileges after. Open
// reports a missing capability as ErrPermission and a queue owned by another
// process as a *QueueBusyError (ErrQueueBusy) naming that process.
//
// # Packet lifetime
//
// Packet.Payload and the other slices of a Packet point into the Conn's
// receive buffer: they are valid until the handler returns (Serve) or until
// the next ReadPacket. Packet.Clone makes a copy that lives on. The kernel
// keeps every packet until it gets a verdict; a packet never given one waits
// forever (or until the Conn closes, which drops it). Each packet gets at
// most one verdict: a second one is refused with ErrVerdictTwice before it
// reaches the kernel.
//
// A replacement payload (Verdict.WithPayload) replaces the whole packet from
// its network header; the kernel does not fix checksums. It is refused for a
// truncated packet (Packet.Truncated): the kernel would replace the whole
// packet with the truncated copy.
//
// # Concurrency
//
// One goroutine reads at a time (Serve or ReadPacket). SetVerdict may be
// called from any goroutine, also while a read is blocked; no lock is held
// across the blocking receive. SetVerdictBatch is for ReadPacket callers
// (Serve batches by itself). Close may be called at any time, from any
// goroutine, Config.OnError included: it unblocks a blocked read at once.
// Serve starts no goroutine of its own except one that waits for the
// context, when the context can be cancelled; Config.VerdictTimeout starts
// one per Conn, which Close stops.
//
// A Serve handler that wants to answer later returns Defer, hands the packet
// (cloned) to another goroutine, and that goroutine calls SetVerdict.
//
// # Buffers and ENOBUFS
//
// When packets arrive faster than they are read, the socket's receive
// buffer fills and the kernel drops the packets that do not fit (or accepts
// them, with Config.FailOpen), and tells the socket with ENOBUFS. This
// package counts that as an overrun (Stats.Overruns), reports ErrOverrun
// through ReadPacket or Config.OnError, and keeps going: an overrun never
// ends Serve. Open sizes the receive buffer for a full queue
// (Config.ReadBufferSize) with SO_RCVBUFFORCE, falling back to SO_RCVBUF,
// which net.core.rmem_max caps. Config.NoENOBUFS silences the reports; the
// kernel's own drop counters in Stats.Kernel still show the losses.
//
// When the queue itself is full (Config.MaxQueueLen packets wait for a
// verdict) the kernel drops new packets, or accepts them with FailOpen.
//
// A Conn receives up to 64 messages per system call, into 64 buffers of
// 96 KiB each, large enough for any message: 6 MiB of address space. Pages
// are backed by memory as messages fill them: small packets touch a page
// of each buffer, large (GSO) packets may touch all of it.
//
// # Fail-open and bypass
//
// Config.FailOpen makes the kernel accept instead of drop when the queue or
// the socket buffer is full. The rule's --queue-bypass (nft: queue flags
// bypass) makes the kernel accept packets while no program has the queue
// bound, e.g. before the program starts or after it exits. QueueTo(n) with
// WithBypass does the same for a verdict that sends a packet to queue n.
//
// # Network namespaces
//
// Queues belong to a network namespace. Config.NetNS opens the socket in
// another namespace (a path such as /run/netns/NAME); the calling thread is
// switched for the socket call only. Statistics are read from the same
// namespace. Inside an unprivileged user namespace NFQUEUE works, but
// SO_RCVBUFFORCE is refused (the buffer falls back to SO_RCVBUF, capped by
// net.core.rmem_max) and the kernel's statistics file may be unreadable
// (Stats.KernelErr then matches fs.ErrPermission).
//
// # Kernel versions
//
//   - NFQUEUE, verdicts, copy modes, marks: Linux 2.6.14.
//   - Queue length (Config.MaxQueueLen): 2.6.25.
//   - Batch verdicts: 3.1.
//   - Config.FailOpen, Config.Conntrack, connmark in verdicts: 3.6
//     (Conntrack and connmark also need CONFIG_NETFILTER_NETLINK_GLUE_CT;
//     without it Open refuses Conntrack with ErrNotSupported and the kernel
//     ignores a connmark).
//   - Packet.CapLen: 3.7. Packet.SkbInfo and GSO (Config.DisableGSO): 3.10.
//   - Config.UIDGID: 3.14. Config.SecCtx: 4.2. VLAN and L2 header (bridge
//     family): 4.7. Fail-open on a full socket buffer: 4.6.
//   - Packet.Priority and WithPriority: 5.18. Packet.CgroupClassID: 6.4.
//
// Kernels before 3.6 ignore the configuration flags. Later ones refuse a
// flag they do not know, and Open says ErrNotSupported: on 3.6 to 3.9 set
// Config.DisableGSO, and leave UIDGID off before 3.14 and SecCtx before 4.2.
package nfqueue
