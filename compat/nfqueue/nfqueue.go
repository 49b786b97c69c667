// Package nfqueue offers the API of nfqueue-go
// (github.com/chifflier/nfqueue-go/nfqueue), the cgo binding of
// libnetfilter_queue, on top of the pure-Go package
// github.com/nfqueue-go/nfqueue. A program written for nfqueue-go moves by
// changing its import path to github.com/nfqueue-go/nfqueue/compat/nfqueue:
// no cgo, no libnetfilter_queue, no pkg-config, no GODEBUG=cgocheck=0.
//
//	q := new(nfqueue.Queue)
//	q.SetCallback(func(p *nfqueue.Payload) int {
//		p.SetVerdict(nfqueue.NF_ACCEPT)
//		return 0
//	})
//	q.Init()
//	defer q.Close()
//	q.Unbind(syscall.AF_INET)
//	q.Bind(syscall.AF_INET)
//	q.CreateQueue(0)
//	q.SetMode(nfqueue.NFQNL_COPY_PACKET)
//	q.Loop() // until q.StopLoop()
//
// The names, types and calling order are nfqueue-go's, and so is the
// behaviour, with these differences:
//
//   - Errors are reported. nfqueue-go's verdict methods, SetMode and
//     SetQueueMaxLen always returned nil; here they return the error of the
//     underlying package (wrapped so that it also matches ErrRuntime).
//     Programs that ignore the results behave as before.
//   - Loop stops at once on StopLoop (nfqueue-go noticed within half a
//     second), and also returns when DestroyQueue or Close ends the queue.
//   - SetMode(NFQNL_COPY_NONE) is refused: in that mode the kernel drops
//     every packet of the queue.
//   - The queue is bound in CreateQueue with the copy mode and length in
//     effect; SetMode and SetQueueMaxLen that change them afterwards bind
//     the queue again with the new settings. Packets waiting for a verdict
//     then are dropped by the kernel, much as packets that arrived in
//     nfqueue-go between creating the queue and setting its mode.
//   - SetVerdictMark and SetVerdictMarkModified need no build tag.
//
// Bind and Unbind are accepted and do nothing: they sent the kernel the
// obsolete NFQNL_CFG_CMD_PF_BIND and PF_UNBIND commands, which every
// kernel since Linux 3.8 ignores.
//
// As with nfqueue-go, the kernel gets a packet's verdict only from a Payload
// method; the int the callback returns is ignored. A callback may give the
// verdict itself or keep the Payload and give it later from another
// goroutine. A packet that never gets one waits in the kernel until the
// queue is destroyed.
//
// New code should use github.com/nfqueue-go/nfqueue directly: one Open,
// a handler that returns typed verdicts, contexts, packet metadata without
// copies. docs/MIGRATING.md in the module shows how.
package nfqueue

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	nfq "github.com/nfqueue-go/nfqueue"
)

// Errors returned by Queue's methods. Errors from the underlying package
// are wrapped so that they match ErrRuntime or ErrOpenFailed with
// errors.Is, and their own errors too (such as ErrPermission of
// github.com/nfqueue-go/nfqueue, or syscall.EPERM).
var (
	// ErrNotInitialized: the call came before the calls it needs (Init,
	// SetCallback, CreateQueue), or after Close.
	ErrNotInitialized = errors.New("nfqueue: queue is not initialized")
	// ErrOpenFailed: Init cannot work on this platform.
	ErrOpenFailed = errors.New("nfqueue: cannot open netfilter queue")
	// ErrRuntime: the kernel or the underlying package refused an
	// operation.
	ErrRuntime = errors.New("nfqueue: runtime error")
)

// Verdicts, the kernel's NF_* values (linux/netfilter.h). Like nfqueue-go's
// they are int variables. NF_QUEUE sends a packet to queue 0; to choose the
// queue n, pass NF_QUEUE | n<<16, and add 0x8000 to accept the packet when
// nobody listens on n.
var (
	NF_DROP   = 0 // discard the packet
	NF_ACCEPT = 1 // let the packet continue
	NF_QUEUE  = 3 // send the packet to another queue
	NF_REPEAT = 4 // run the hook's chain again from the start
	NF_STOP   = 5 // accept and skip the rest of the hook's chains
)

// Copy modes for SetMode, the kernel's NFQNL_COPY_* values.
var (
	NFQNL_COPY_NONE   uint8 = 0 // refused by SetMode: the kernel would drop every packet
	NFQNL_COPY_META   uint8 = 1 // metadata only; Payload.Data is nil
	NFQNL_COPY_PACKET uint8 = 2 // metadata and the packet (the default)
)

// Callback is called for each packet, on the goroutine running Loop. It
// gives the packet its verdict with a Payload method, now or later from
// any goroutine; its return value is ignored.
type Callback func(*Payload) int

// Queue is a connection to one kernel queue, with its callback. The zero
// value is ready for Init. Its methods are safe for concurrent use.
type Queue struct {
	cb atomic.Pointer[Callback]

	mu     sync.Mutex
	ready  bool // Init called, Close not yet
	conn   *nfq.Conn
	num    uint16
	cfg    nfq.Config
	cancel context.CancelFunc // ends the running Loop

	// netns and open are set by tests: the network namespace to open the
	// queue in, and a replacement for nfq.Open.
	netns string
	open  func(queue uint16, cfg *nfq.Config) (*nfq.Conn, error)
}

// Init prepares the Queue. It opens nothing yet: the netlink socket is
// opened and the queue bound in one step by CreateQueue.
func (q *Queue) Init() error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("%w: %w", ErrOpenFailed, nfq.ErrNotSupported)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ready = true
	return nil
}

// SetCallback sets the function called for each packet. It may be changed
// while Loop runs; the next packet gets the new one.
func (q *Queue) SetCallback(cb Callback) error {
	if cb == nil {
		q.cb.Store(nil)
	} else {
		q.cb.Store(&cb)
	}
	return nil
}

func (q *Queue) callback() Callback {
	if p := q.cb.Load(); p != nil {
		return *p
	}
	return nil
}

// Close destroys the queue, if any, and ends a running Loop. The Queue
// needs Init again before reuse.
func (q *Queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.cancel != nil {
		q.cancel()
	}
	if q.conn != nil {
		q.conn.Close()
		q.conn = nil
	}
	q.ready = false
}

// Bind does nothing but check that Init was called: binding a protocol
// family (NFQNL_CFG_CMD_PF_BIND) is obsolete and ignored by the kernel
// since Linux 3.8. The queue receives the packets of every family.
func (q *Queue) Bind(af_family int) error {
	return q.check()
}

// Unbind does nothing but check that Init was called, as Bind.
func (q *Queue) Unbind(af_family int) error {
	return q.check()
}

func (q *Queue) check() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.ready {
		return ErrNotInitialized
	}
	return nil
}

// CreateQueue binds kernel queue queue_num (the --queue-num of the
// NFQUEUE rule) and configures it to copy whole packets, in one request
// the kernel acknowledges. It needs Init and SetCallback first, and
// CAP_NET_ADMIN. Packets arriving before Loop runs wait in the socket.
// A Queue holds one kernel queue: DestroyQueue it before creating another.
func (q *Queue) CreateQueue(queue_num int) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.ready || q.callback() == nil {
		return ErrNotInitialized
	}
	if queue_num < 0 || queue_num > 0xffff {
		return fmt.Errorf("%w: queue number %d is not in 0-65535", ErrRuntime, queue_num)
	}
	if q.conn != nil {
		return fmt.Errorf("%w: queue %d already created; DestroyQueue it first", ErrRuntime, q.num)
	}
	// libnetfilter_queue does not ask for GSO packets: the kernel segments
	// them and completes their checksums, as nfqueue-go programs expect.
	cfg := nfq.Config{DisableGSO: true, NetNS: q.netns}
	conn, err := q.openConn(uint16(queue_num), cfg)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRuntime, err)
	}
	q.conn, q.num, q.cfg = conn, uint16(queue_num), cfg
	return nil
}

func (q *Queue) openConn(num uint16, cfg nfq.Config) (*nfq.Conn, error) {
	if q.open != nil {
		return q.open(num, &cfg)
	}
	return nfq.Open(num, &cfg)
}

// DestroyQueue unbinds the queue and closes its socket; packets still
// waiting for a verdict are dropped by the kernel. A running Loop
// returns. CreateQueue may be called again afterwards.
func (q *Queue) DestroyQueue() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.conn == nil {
		return ErrNotInitialized
	}
	err := q.conn.Close()
	q.conn = nil
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRuntime, err)
	}
	return nil
}

// SetMode sets how much of each packet the kernel copies:
// NFQNL_COPY_PACKET (whole packets, up to 65531 bytes; the default) or
// NFQNL_COPY_META (no payload). It needs CreateQueue first; a change binds
// the queue again (see the package documentation).
func (q *Queue) SetMode(mode uint8) error {
	var m nfq.CopyMode
	switch mode {
	case 2: // NFQNL_COPY_PACKET
		m = nfq.CopyPacket
	case 1: // NFQNL_COPY_META
		m = nfq.CopyMeta
	case 0: // NFQNL_COPY_NONE
		return fmt.Errorf("%w: NFQNL_COPY_NONE would make the kernel drop every packet: %w", ErrRuntime, nfq.ErrInvalidConfig)
	default:
		return fmt.Errorf("%w: unknown copy mode %d: %w", ErrRuntime, mode, nfq.ErrInvalidConfig)
	}
	return q.reconfigure(func(c *nfq.Config) { c.CopyMode = m })
}

// SetQueueMaxLen sets how many packets the kernel keeps waiting for a
// verdict before it drops new ones (1024 by default; 0 restores the
// default). It needs CreateQueue first; a change binds the queue again (see
// the package documentation).
func (q *Queue) SetQueueMaxLen(maxlen uint32) error {
	return q.reconfigure(func(c *nfq.Config) { c.MaxQueueLen = maxlen })
}

// reconfigure applies change to the queue's Config and, if that changes
// it, binds the queue again with the new Config.
func (q *Queue) reconfigure(change func(*nfq.Config)) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.ready || q.conn == nil {
		return ErrNotInitialized
	}
	cfg := q.cfg
	change(&cfg)
	if cfg.CopyMode == q.cfg.CopyMode && cfg.MaxQueueLen == q.cfg.MaxQueueLen {
		return nil
	}
	// The kernel lets one socket own a queue: the old one lets go first.
	q.conn.Close()
	q.conn = nil
	conn, err := q.openConn(q.num, cfg)
	if err != nil {
		return fmt.Errorf("%w: bind queue %d again: %w", ErrRuntime, q.num, err)
	}
	q.conn, q.cfg = conn, cfg
	return nil
}

// Loop receives the queue's packets and calls the callback for each, until
// StopLoop, DestroyQueue or Close; then it returns nil. It needs Init,
// SetCallback and CreateQueue first. Errors that do not end the queue
// (such as a lost packet) do not end Loop either.
func (q *Queue) Loop() error {
	q.mu.Lock()
	if !q.ready || q.conn == nil || q.callback() == nil {
		q.mu.Unlock()
		return ErrNotInitialized
	}
	if q.cancel != nil {
		q.mu.Unlock()
		return fmt.Errorf("%w: Loop is already running", ErrRuntime)
	}
	ctx, cancel := context.WithCancel(context.Background())
	q.cancel = cancel
	conn := q.conn
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		q.cancel = nil
		q.mu.Unlock()
		cancel()
	}()

	for {
		err := conn.Serve(ctx, q.handler(conn))
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrRuntime, err)
		}
		// The Conn was closed: by DestroyQueue or Close, which end the
		// loop, or by SetMode or SetQueueMaxLen, which replaced it.
		q.mu.Lock()
		next := q.conn
		q.mu.Unlock()
		if next == nil || next == conn {
			return nil
		}
		conn = next
	}
}

// StopLoop makes a running Loop return. It does nothing when no Loop runs.
func (q *Queue) StopLoop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.cancel != nil {
		q.cancel()
	}
}

// handler adapts the callback to a Serve handler for conn.
func (q *Queue) handler(conn *nfq.Conn) nfq.Handler {
	return func(p *nfq.Packet) nfq.Verdict {
		pl := &Payload{
			Id:      p.ID,
			conn:    conn,
			mark:    p.Mark,
			indev:   p.InDev,
			outdev:  p.OutDev,
			physin:  p.PhysInDev,
			physout: p.PhysOutDev,
			inCB:    true,
		}
		if p.Has(nfq.AttrPayload) {
			// A copy: the callback may keep the Payload.
			pl.Data = append([]byte{}, p.Payload...)
		}
		if cb := q.callback(); cb != nil {
			cb(pl)
		}
		return pl.done()
	}
}

// Payload is a packet from the queue, given to the callback. Data is a
// copy that the callback may keep, as may the Payload itself.
type Payload struct {
	// Id is the packet id, which the verdict names.
	Id uint32
	// Data is the packet from its IP header on; nil in
	// NFQNL_COPY_META mode.
	Data []byte

	conn                                 *nfq.Conn
	mark, indev, outdev, physin, physout uint32

	mu   sync.Mutex
	inCB bool // the callback is running
	set  bool // the callback gave a verdict
	v    nfq.Verdict
}

// SetVerdict gives the packet its verdict: NF_ACCEPT, NF_DROP, NF_REPEAT,
// NF_STOP, or NF_QUEUE with a queue number (see NF_QUEUE). Each packet
// takes one verdict; a second returns an error matching ErrVerdictTwice
// of github.com/nfqueue-go/nfqueue.
func (p *Payload) SetVerdict(verdict int) error {
	v, err := toVerdict(verdict)
	if err != nil {
		return err
	}
	return p.give(v)
}

// SetVerdictModified gives the packet its verdict and replaces the packet
// with data, from the IP header on. Checksums in data must be correct: the
// kernel does not fix them.
func (p *Payload) SetVerdictModified(verdict int, data []byte) error {
	v, err := toVerdict(verdict)
	if err != nil {
		return err
	}
	return p.give(v.WithPayload(data))
}

// SetVerdictMark gives the packet its verdict and sets its mark
// (skb->mark), as -j MARK would.
func (p *Payload) SetVerdictMark(verdict int, mark uint32) error {
	v, err := toVerdict(verdict)
	if err != nil {
		return err
	}
	return p.give(v.WithMark(mark))
}

// SetVerdictMarkModified gives the packet its verdict, sets its mark and
// replaces the packet with data, as SetVerdictMark and SetVerdictModified.
func (p *Payload) SetVerdictMarkModified(verdict int, mark uint32, data []byte) error {
	v, err := toVerdict(verdict)
	if err != nil {
		return err
	}
	return p.give(v.WithMark(mark).WithPayload(data))
}

// give sends v for the packet, or, while the callback runs, keeps it for
// the handler to return.
func (p *Payload) give(v nfq.Verdict) error {
	p.mu.Lock()
	if p.inCB {
		defer p.mu.Unlock()
		if p.set {
			return fmt.Errorf("%w: packet %d: %w", ErrRuntime, p.Id, nfq.ErrVerdictTwice)
		}
		p.set, p.v = true, v
		return nil
	}
	p.mu.Unlock()
	if p.conn == nil {
		return ErrNotInitialized
	}
	if err := p.conn.SetVerdict(p.Id, v); err != nil {
		return fmt.Errorf("%w: %w", ErrRuntime, err)
	}
	return nil
}

// done ends the callback and returns the verdict for Serve to send: the
// one the callback gave, or Defer.
func (p *Payload) done() nfq.Verdict {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inCB = false
	if p.set {
		return p.v
	}
	return nfq.Defer
}

// toVerdict converts an NF_* value, with queue number and bypass flag for
// NF_QUEUE, as the kernel reads it: the low byte is the verdict; the
// other bits matter only to NF_QUEUE.
func toVerdict(verdict int) (nfq.Verdict, error) {
	code := uint32(verdict)
	switch code & 0xff {
	case 0:
		return nfq.Drop, nil
	case 1:
		return nfq.Accept, nil
	case 3:
		v := nfq.QueueTo(uint16(code >> 16))
		if code&0x8000 != 0 {
			v = v.WithBypass()
		}
		return v, nil
	case 4:
		return nfq.Repeat, nil
	case 5:
		return nfq.Stop, nil
	}
	return nfq.Verdict{}, fmt.Errorf("%w: verdict %#x: %w", ErrRuntime, code, nfq.ErrInvalidVerdict)
}

// GetNFMark returns the packet's mark (skb->mark), 0 if none.
func (p *Payload) GetNFMark() uint32 { return p.mark }

// GetInDev returns the index of the interface the packet came in on, 0 if
// none.
func (p *Payload) GetInDev() uint32 { return p.indev }

// GetOutDev returns the index of the interface the packet goes out on, 0 if
// none.
func (p *Payload) GetOutDev() uint32 { return p.outdev }

// GetPhysInDev returns the index of the bridge port the packet came in on,
// 0 if none.
func (p *Payload) GetPhysInDev() uint32 { return p.physin }

// GetPhysOutDev returns the index of the bridge port the packet goes out
// on, 0 if none.
func (p *Payload) GetPhysOutDev() uint32 { return p.physout }
