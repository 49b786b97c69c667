package nfqueue

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nfqueue-go/nfqueue/internal/nlsock"
	"github.com/nfqueue-go/nfqueue/internal/wire"
)

// recvBufSize holds the largest message the kernel sends: a 65531-byte
// payload plus every other attribute (security context and conntrack entry
// included), or an error echoing a verdict with a 65531-byte payload.
const recvBufSize = 96 << 10

// recvBatch is how many datagrams one receive call (recvmmsg) takes at
// most. Measured with bench/ on a 2-CPU VM flooding 64-byte UDP: one
// datagram per call cost Serve 1.02 system calls per packet, 16 per call
// 0.19 (0.82× the packets per second of the batching C consumer), 64 per
// call 0.10 (0.95×, at 1.08× its CPU time per packet). The buffers take
// 6 MiB of address space per Conn, but memory only for the pages that
// messages touch: a 64-byte packet touches one page of its buffer.
const recvBatch = 64

// Conn is a bound queue. Its methods are safe for concurrent use, with one
// reader at a time: ReadPacket and Serve exclude each other.
type Conn struct {
	queue uint16
	cfg   Config
	sock  *nlsock.Conn

	closeOnce sync.Once
	closed    atomic.Bool
	serving   atomic.Bool
	interrupt atomic.Bool // set when Serve's context is done

	// Read side, guarded by readMu.
	readMu  sync.Mutex
	rbufs   [][]byte // one buffer per datagram of a batch
	batch   *nlsock.Batch
	next    int // the next datagram of the batch to decode
	got     int // how many datagrams the last receive took
	msgs    wire.Messages
	backlog [][]byte // datagrams that arrived while binding

	track   tracker
	wbufs   sync.Pool // *[]byte verdict buffers for SetVerdict
	counter counters
	seq     atomic.Uint32
	sweeper sync.WaitGroup // the VerdictTimeout goroutine
	stop    chan struct{}  // closed by Close
	// sweeperReporting is set while the sweep goroutine runs OnError.
	sweeperReporting atomic.Bool
}

// Open binds queue number queue (the --queue-num of the NFQUEUE rule) with
// one atomic CONFIG request: bind, copy mode and range, queue length and
// flags, acknowledged by the kernel. A nil cfg means the zero Config.
// Packets that reach the queue while it is being set up are kept for the
// first reads. Open needs CAP_NET_ADMIN in the user namespace that owns the
// network namespace.
func Open(queue uint16, cfg *Config) (*Conn, error) {
	c, err := configFor(queue, cfg)
	if err != nil {
		return nil, err
	}
	sock, err := nlsock.Open(nlsock.Options{NetNS: c.NetNS, ReadBuffer: c.readBuffer(), NoENOBUFS: c.NoENOBUFS})
	if err != nil {
		if errors.Is(err, syscall.EPROTONOSUPPORT) {
			err = &wrapErrno{err: ErrModuleMissing, errno: syscall.EPROTONOSUPPORT}
		}
		return nil, &OpError{Op: "open", Queue: queue, Err: err}
	}
	return newConn(sock, queue, c)
}

// NewConn binds queue like Open, on a socket the caller opened: a netlink
// netfilter socket, for example one a privileged process opened and passed
// over a Unix socket, or one end of a datagram socket pair whose other end
// plays the kernel (see package nfqtest). NewConn uses a duplicate of f's
// descriptor and the caller still owns f, but the two share one open file,
// which NewConn makes non-blocking. Config.NetNS does not apply.
func NewConn(f *os.File, queue uint16, cfg *Config) (*Conn, error) {
	c, err := configFor(queue, cfg)
	if err != nil {
		return nil, err
	}
	sock, err := nlsock.FromFile(f, nlsock.Options{ReadBuffer: c.readBuffer(), NoENOBUFS: c.NoENOBUFS})
	if err != nil {
		return nil, &OpError{Op: "open", Queue: queue, Err: err}
	}
	return newConn(sock, queue, c)
}

func configFor(queue uint16, cfg *Config) (Config, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if err := c.validate(); err != nil {
		return c, &OpError{Op: "open", Queue: queue, Err: err}
	}
	return c, nil
}

func newConn(sock *nlsock.Conn, queue uint16, c Config) (*Conn, error) {
	conn := &Conn{
		queue: queue,
		cfg:   c,
		sock:  sock,
		track: newTracker(c.queueLen()),
		stop:  make(chan struct{}),
	}
	mem := make([]byte, recvBatch*recvBufSize)
	for i := range recvBatch {
		conn.rbufs = append(conn.rbufs, mem[i*recvBufSize:(i+1)*recvBufSize:(i+1)*recvBufSize])
	}
	conn.batch = sock.NewBatch(conn.rbufs)
	conn.wbufs.New = func() any { b := make([]byte, 0, 256); return &b }
	if err := conn.bind(); err != nil {
		sock.Close()
		return nil, err
	}
	if c.VerdictTimeout > 0 {
		conn.sweeper.Add(1)
		go conn.sweep()
	}
	return conn, nil
}

var clockBase = time.Now()

// nanotime returns monotonic nanoseconds.
func nanotime() int64 { return int64(time.Since(clockBase)) }

// deliveredAt returns the time to record for a packet being delivered: only
// VerdictTimeout needs it.
func (c *Conn) deliveredAt() int64 {
	if c.cfg.VerdictTimeout > 0 {
		return nanotime()
	}
	return 0
}

// bind sends the CONFIG request, retrying a busy queue for cfg.BindRetry.
func (c *Conn) bind() error {
	msg := c.cfg.bindMsg(c.queue)
	deadline := time.Now().Add(c.cfg.BindRetry)
	eagain := 0
	for {
		errno, ext, err := c.config(&msg)
		switch {
		case err != nil:
			return &OpError{Op: "bind", Queue: c.queue, Err: err}
		case errno == 0:
			return nil
		case errno == syscall.EAGAIN && eagain < 10:
			// The kernel loaded a module the flags need; ask again.
			eagain++
			continue
		case errno == syscall.EPERM && time.Now().Before(deadline) && hasCapNetAdmin():
			// With the privilege, EPERM means another socket owns the
			// queue; a killed owner releases it shortly.
			time.Sleep(5 * time.Millisecond)
			continue
		}
		return &OpError{Op: "bind", Queue: c.queue, Err: c.bindError(errno, ext)}
	}
}

// bindError explains a refused bind.
func (c *Conn) bindError(errno syscall.Errno, ext string) error {
	switch errno {
	case syscall.EPERM:
		// The owner is in /proc only for a real netlink socket (a socket
		// given to NewConn may not be one).
		if c.PortID() != 0 {
			if busy := queueOwner(c.cfg.NetNS, c.queue); busy != nil {
				return busy
			}
		}
		if !hasCapNetAdmin() {
			return &wrapErrno{err: ErrPermission, errno: errno, msg: ext}
		}
		// Owned by a socket /proc does not show (e.g. it cannot be read).
		return &QueueBusyError{Queue: c.queue}
	case syscall.EOPNOTSUPP:
		var which []string
		if c.cfg.Conntrack {
			which = append(which, "Conntrack (needs nf_conntrack_netlink and CONFIG_NETFILTER_NETLINK_GLUE_CT)")
		}
		if c.cfg.SecCtx {
			which = append(which, "SecCtx (needs CONFIG_NETWORK_SECMARK)")
		}
		if len(which) == 0 {
			which = append(which, "a queue flag (GSO needs Linux 3.10, UIDGID 3.14; see Config)")
		}
		return &wrapErrno{err: fmt.Errorf("%w by this kernel: %s", ErrNotSupported, strings.Join(which, ", ")), errno: errno, msg: ext}
	case syscall.EINVAL, syscall.ENOENT:
		if ext == "" {
			return &wrapErrno{err: ErrModuleMissing, errno: errno}
		}
	}
	if ext != "" {
		return fmt.Errorf("%w (%s)", errno, ext)
	}
	return errno
}

// config sends a CONFIG request and waits for its acknowledgement, keeping
// packets that arrive meanwhile. It returns the kernel's errno (0 for
// success) and extended-ack text.
func (c *Conn) config(m *wire.Config) (syscall.Errno, string, error) {
	seq := c.seq.Add(1) | 1<<31 // never equal to a packet id the kernel assigns soon
	b := wire.AppendConfig(nil, seq, m)
	if err := c.sock.Send(b); err != nil {
		return 0, "", err
	}
	// A bounded wait: the kernel answers synchronously, so only a flood of
	// packets sent before the answer can delay it.
	if err := c.sock.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return 0, "", err
	}
	defer c.sock.SetReadDeadline(time.Time{})
	for {
		n, err := c.batch.Recv()
		if err != nil {
			if errors.Is(err, syscall.ENOBUFS) {
				c.counter.overruns.Add(1)
				continue
			}
			return 0, "", err
		}
		// Every datagram of the batch but the answer itself is kept for
		// the first reads, also those after the answer.
		var errno syscall.Errno
		var ext string
		answered := false
		for i := range n {
			size, trunc := c.batch.Len(i)
			if trunc {
				continue
			}
			dgram := c.rbufs[i][:size]
			var it wire.Messages
			it.Reset(dgram)
			var msg wire.Message
			keep := false
			for it.Next(&msg) {
				e, err := wire.ParseError(msg.Header.Flags, msg.Payload)
				if msg.Header.Type == wire.NLMsgError && err == nil && e.Orig.Seq == seq {
					errno, ext, answered = syscall.Errno(e.Errno), string(e.ExtMsg), true
					continue
				}
				keep = true
			}
			if keep {
				c.backlog = append(c.backlog, append([]byte(nil), dgram...))
			}
		}
		if answered {
			return errno, ext, nil
		}
	}
}

// Queue returns the queue number.
func (c *Conn) Queue() uint16 { return c.queue }

// PortID returns the netlink port id of the Conn's socket, as shown in the
// second column of /proc/net/netfilter/nfnetlink_queue.
func (c *Conn) PortID() uint32 { return c.sock.PortID() }

// Close unbinds the queue and closes the socket. A blocked ReadPacket or
// Serve returns at once (Serve with nil). Packets still waiting for a
// verdict are dropped by the kernel. Close is idempotent.
func (c *Conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		close(c.stop)
		// The sweep goroutine ends at once; it may be the one calling
		// Close, from Config.OnError.
		if !c.sweeperReporting.Load() {
			c.sweeper.Wait()
		}
		// Unbinding first makes the queue free the moment Close returns;
		// closing the socket alone releases it too, a little later.
		m := wire.Config{Queue: c.queue, HasCmd: true, Cmd: wire.CmdUnbind}
		_ = c.sock.Send(wire.AppendConfig(nil, c.seq.Add(1)|1<<31, &m))
		if cerr := c.sock.Close(); cerr != nil {
			err = &OpError{Op: "close", Queue: c.queue, Err: cerr}
		}
	})
	return err
}

// ReadPacket waits for the next packet and decodes it into p, without
// allocating. p's slices alias the Conn's buffer until the next
// ReadPacket. Give each packet a verdict with SetVerdict (from any
// goroutine); the kernel holds it until then.
//
// Besides ErrClosed and io.EOF (the peer of a NewConn socket went away),
// which end reading, ReadPacket returns errors that do not: ErrOverrun
// (packets were lost), ErrMalformed, and verdict errors the kernel sent
// back (an *OpError with the packet id and verdict). Keep reading after
// those. A malformed packet whose id could be read still awaits a verdict:
// its *OpError carries the id.
func (c *Conn) ReadPacket(p *Packet) error {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	return c.read(p, nil)
}

// read implements ReadPacket; before it would block it calls flush, if set.
// The caller holds readMu.
func (c *Conn) read(p *Packet, flush func() error) error {
	var msg wire.Message
	for {
		if c.closed.Load() {
			return ErrClosed
		}
		if c.msgs.Next(&msg) {
			if err := c.handleMsg(&msg, p); err != errSkip {
				return err
			}
			continue
		}
		if err := c.msgs.Err(); err != nil {
			c.msgs.Reset(nil)
			c.counter.malformed.Add(1)
			return &OpError{Op: "receive", Queue: c.queue, Err: fmt.Errorf("%w: %v", ErrMalformed, err)}
		}
		if len(c.backlog) > 0 {
			c.msgs.Reset(c.backlog[0])
			c.backlog[0] = nil
			c.backlog = c.backlog[1:]
			continue
		}
		if c.next < c.got {
			dgram, err := c.datagram(c.next)
			c.next++
			if err != nil {
				return err
			}
			c.msgs.Reset(dgram)
			continue
		}
		n, err := c.recv(flush)
		if err != nil {
			return err
		}
		c.next, c.got = 0, n
	}
}

// datagram returns datagram i of the last receive.
func (c *Conn) datagram(i int) ([]byte, error) {
	n, trunc := c.batch.Len(i)
	switch {
	case trunc:
		c.counter.malformed.Add(1)
		return nil, &OpError{Op: "receive", Queue: c.queue, Err: fmt.Errorf("%w: message over %d bytes", ErrMalformed, recvBufSize)}
	case n == 0:
		// Netlink never sends an empty datagram; a socket given to
		// NewConn does when its peer has gone.
		return nil, &OpError{Op: "receive", Queue: c.queue, Err: io.EOF}
	}
	return c.rbufs[i][:n], nil
}

// recv receives a batch of datagrams and returns how many. With flush set
// it first sends Serve's pending verdicts: one flush per receive keeps the
// kernel's queue short. Flushing only when the socket was empty let the
// queue grow and shrink by hundreds of packets, and the kernel's resizing
// of its table of queued ids (kworker time on the consumer's CPU) rose
// from about 220 to 825 ns per packet, capping throughput at 0.84× the
// batching C consumer instead of 1.01× (bench/, same run).
func (c *Conn) recv(flush func() error) (int, error) {
	if flush != nil {
		if err := flush(); err != nil {
			return 0, err
		}
	}
	var n int
	var err error
	if c.cfg.BusyPoll {
		for n, err = c.batch.TryRecv(); err == nlsock.ErrWouldBlock; n, err = c.batch.TryRecv() {
			if c.closed.Load() {
				return 0, ErrClosed
			}
			if c.interrupt.Load() {
				return 0, errInterrupted
			}
			runtime.Gosched()
		}
	} else {
		n, err = c.batch.Recv() // tries at once, then waits in the netpoller
	}
	switch {
	case err == nil && n == 0:
		return 0, &OpError{Op: "receive", Queue: c.queue, Err: io.EOF}
	case err == nil:
		return n, nil
	case errors.Is(err, ErrClosed) || c.closed.Load():
		return 0, ErrClosed
	case errors.Is(err, syscall.ENOBUFS):
		c.counter.overruns.Add(1)
		return 0, &OpError{Op: "receive", Queue: c.queue, Err: &wrapErrno{err: ErrOverrun, errno: syscall.ENOBUFS}}
	}
	return 0, &OpError{Op: "receive", Queue: c.queue, Err: err}
}

// errInterrupted tells a busy-polling Serve that its context is done.
var errInterrupted = errors.New("interrupted")

// errSkip tells read that a message carried nothing for the caller.
var errSkip = errors.New("skip")

// handleMsg decodes one message: a packet into p, or a kernel error.
func (c *Conn) handleMsg(m *wire.Message, p *Packet) error {
	if typ, ok := m.IsQueue(); ok {
		if typ != wire.MsgPacket {
			return errSkip
		}
		if err := p.unmarshal(m.Payload); err != nil {
			c.counter.malformed.Add(1)
			oe := &OpError{Op: "receive", Queue: c.queue, Err: err}
			if p.Has(AttrPacketHdr) {
				// The kernel holds this packet until it gets a verdict.
				oe.ID = p.ID
				c.track.mu.Lock()
				c.track.add(p.ID, 0, c.deliveredAt())
				c.track.mu.Unlock()
			}
			return oe
		}
		var flags uint8
		if p.Truncated() {
			flags = slotTruncated
			c.counter.truncated.Add(1)
		}
		c.track.mu.Lock()
		c.track.add(p.ID, flags, c.deliveredAt())
		c.track.mu.Unlock()
		c.counter.received.Add(1)
		return nil
	}
	if m.Header.Type != wire.NLMsgError {
		return errSkip
	}
	e, err := wire.ParseError(m.Header.Flags, m.Payload)
	if err != nil {
		c.counter.malformed.Add(1)
		return &OpError{Op: "receive", Queue: c.queue, Err: fmt.Errorf("%w: %v", ErrMalformed, err)}
	}
	if e.Errno == 0 {
		return errSkip // an acknowledgement
	}
	c.counter.verdictErrors.Add(1)
	return c.requestError(&e)
}

// requestError turns the kernel's error for one of our requests into an
// *OpError naming the packet and verdict it was for. A verdict's sequence
// number is its packet id.
func (c *Conn) requestError(e *wire.ErrorMsg) error {
	errno := syscall.Errno(e.Errno)
	oe := &OpError{Queue: c.queue, Err: errno}
	if e.ExtMsg != nil {
		oe.Err = &wrapErrno{err: errors.New("kernel"), errno: errno, msg: string(e.ExtMsg)}
	}
	switch e.Orig.Type {
	case wire.QueueType(wire.MsgVerdict):
		oe.Op, oe.ID = "verdict", e.Orig.Seq
	case wire.QueueType(wire.MsgVerdictBatch):
		oe.Op, oe.ID = "batch verdict", e.Orig.Seq
	default:
		oe.Op = "config"
		return oe
	}
	if _, attrs, err := wire.SplitGenMsg(e.OrigPayload); err == nil {
		a := wire.NewAttrs(attrs)
		for a.Next() {
			if a.Type() == wire.AttrVerdictHdr {
				if code, _, ok := wire.VerdictHdr(a.Data()); ok {
					oe.Verdict.o.Code = code
				}
			}
		}
	}
	return oe
}

// SetVerdict gives packet id its verdict. It may be called from any
// goroutine, also while another is blocked in ReadPacket or Serve, and at
// most once per packet. Without asking the kernel it refuses an id above
// every id delivered on this Conn with ErrUnknownPacket, and any other id
// not awaiting a verdict with ErrVerdictTwice. Errors the kernel finds
// later come back through ReadPacket or Config.OnError with the packet id.
func (c *Conn) SetVerdict(id uint32, v Verdict) error {
	if c.closed.Load() {
		return &OpError{Op: "verdict", Queue: c.queue, ID: id, Verdict: v, Err: ErrClosed}
	}
	if err := c.take(id, &v); err != nil {
		return err
	}
	err := c.send(func(b []byte) []byte { return wire.AppendVerdict(b, c.queue, id, &v.o, 0) })
	if err != nil {
		return c.sendError("verdict", id, v, err)
	}
	c.counter.countVerdict(v.Kind(), 1)
	return nil
}

// send builds a message with build into a pooled buffer and sends it; it
// ends the in-flight state that take or takeUpTo began.
func (c *Conn) send(build func([]byte) []byte) error {
	bp := c.wbufs.Get().(*[]byte)
	b := build((*bp)[:0])
	err := c.sock.Send(b)
	*bp = b
	c.wbufs.Put(bp)
	c.track.mu.Lock()
	c.track.inflight--
	c.track.mu.Unlock()
	return err
}

// take validates v for packet id and removes id from the packets awaiting
// a verdict.
func (c *Conn) take(id uint32, v *Verdict) error {
	if err := v.check(false); err != nil {
		return &OpError{Op: "verdict", Queue: c.queue, ID: id, Verdict: *v, Err: err}
	}
	c.track.mu.Lock()
	defer c.track.mu.Unlock()
	i := c.track.find(id)
	if i < 0 {
		return &OpError{Op: "verdict", Queue: c.queue, ID: id, Verdict: *v, Err: c.track.missingErr(id)}
	}
	if c.track.slots[i].flags&slotTruncated != 0 && v.o.Set&wire.OptPayload != 0 {
		// The packet stays: the caller may still give a valid verdict.
		return &OpError{Op: "verdict", Queue: c.queue, ID: id, Verdict: *v, Err: v.check(true)}
	}
	c.track.deleteAt(i)
	c.track.inflight++
	return nil
}

func (c *Conn) sendError(op string, id uint32, v Verdict, err error) error {
	if c.closed.Load() {
		err = ErrClosed
	}
	return &OpError{Op: op, Queue: c.queue, ID: id, Verdict: v, Err: err}
}

// SetVerdictBatch gives every packet of the queue with an id up to and
// including upTo that still waits for a verdict the verdict v, in one
// message (NFQNL_MSG_VERDICT_BATCH). v may carry a mark and a priority,
// no other option. Ids wrap around as the kernel's do.
//
// It is for callers of ReadPacket. While Serve runs it returns ErrServing:
// Serve batches verdicts itself, and a batch would also cover the packets
// Serve is handling. Do not give packets up to upTo a verdict with
// SetVerdict at the same time.
func (c *Conn) SetVerdictBatch(upTo uint32, v Verdict) error {
	if c.closed.Load() {
		return &OpError{Op: "batch verdict", Queue: c.queue, ID: upTo, Verdict: v, Err: ErrClosed}
	}
	if c.serving.Load() {
		return &OpError{Op: "batch verdict", Queue: c.queue, ID: upTo, Verdict: v, Err: ErrServing}
	}
	if err := v.check(false); err != nil {
		return &OpError{Op: "batch verdict", Queue: c.queue, ID: upTo, Verdict: v, Err: err}
	}
	if !v.batchable() {
		return &OpError{Op: "batch verdict", Queue: c.queue, ID: upTo, Verdict: v,
			Err: fmt.Errorf("%w: a batch verdict carries only a mark and a priority", ErrInvalidVerdict)}
	}
	c.track.mu.Lock()
	n := c.track.takeUpTo(upTo)
	if n == 0 {
		missing := c.track.missingErr(upTo)
		c.track.mu.Unlock()
		return &OpError{Op: "batch verdict", Queue: c.queue, ID: upTo, Verdict: v, Err: missing}
	}
	c.track.inflight++
	c.track.mu.Unlock()
	err := c.send(func(b []byte) []byte { return wire.AppendVerdictBatch(b, c.queue, upTo, &v.o, 0) })
	if err != nil {
		return c.sendError("batch verdict", upTo, v, err)
	}
	c.counter.batches.Add(1)
	c.counter.countVerdict(v.Kind(), uint64(n))
	return nil
}

// hasCapNetAdmin reports whether the process has CAP_NET_ADMIN in its
// effective set.
func hasCapNetAdmin() bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return true // cannot tell: do not claim a missing privilege
	}
	return parseCapEff(b)&(1<<12) != 0
}

// sweep gives TimeoutVerdict to packets that waited VerdictTimeout, until
// Close.
func (c *Conn) sweep() {
	defer c.sweeper.Done()
	t := time.NewTicker(c.cfg.VerdictTimeout / 4)
	defer t.Stop()
	v := c.cfg.TimeoutVerdict
	var ids []uint32
	var b []byte
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		ids = ids[:0]
		c.track.mu.Lock()
		c.track.expired(nanotime()-int64(c.cfg.VerdictTimeout), func(id uint32, _ uint8) { ids = append(ids, id) })
		if len(ids) > 0 {
			c.track.inflight++
		}
		c.track.mu.Unlock()
		if len(ids) == 0 {
			continue
		}
		// Many verdicts per datagram, but no datagram larger than the
		// socket's send buffer allows.
		sent := 0
		var err error
		for sent < len(ids) && err == nil {
			b = b[:0]
			n := 0
			for ; sent+n < len(ids) && len(b) < 32<<10; n++ {
				b = wire.AppendVerdict(b, c.queue, ids[sent+n], &v.o, 0)
			}
			if err = c.sock.Send(b); err == nil {
				sent += n
			}
		}
		c.track.mu.Lock()
		c.track.inflight--
		c.track.mu.Unlock()
		c.counter.timeouts.Add(uint64(sent))
		c.counter.countVerdict(v.Kind(), uint64(sent))
		if err != nil {
			if c.closed.Load() {
				return
			}
			c.sweeperReporting.Store(true)
			c.report(c.sendError("verdict", ids[sent], v, fmt.Errorf("timeout verdicts for %d packets: %w", len(ids)-sent, err)))
			c.sweeperReporting.Store(false)
		}
	}
}

// report passes an error that ends nothing to Config.OnError.
func (c *Conn) report(err error) {
	if f := c.cfg.OnError; f != nil {
		f(err)
	}
}
