package nfqueue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/nfqueue-go/nfqueue/internal/wire"
)

// maxPending bounds how many verdicts Serve gathers before sending them.
const maxPending = 128

// Serve reads packets and gives each the verdict h returns, until the Conn
// is closed (then it returns nil) or ctx is done (then it returns
// ctx.Err() and the Conn stays open), or the peer of a NewConn socket goes
// away (io.EOF). Errors that do not end it (overruns,
// verdict errors from the kernel, malformed messages, invalid verdicts from
// h) go to Config.OnError and are counted in Stats. A packet whose verdict
// h got wrong, or that could not be decoded, is dropped.
//
// Serve receives up to 64 packets per system call. Unless
// Config.DisableBatching is set, it sends the verdicts of the packets of
// one receive together once the handler has seen them all, before it
// receives again: as one VERDICT_BATCH when they are alike and no deferred
// packet is outstanding, else as one datagram of per-packet verdicts in
// order. No packet waits for a batch to fill.
//
// Serve starts no goroutine unless ctx can be cancelled: then one waits for
// it. Only one Serve or ReadPacket runs at a time.
func (c *Conn) Serve(ctx context.Context, h Handler) error {
	if h == nil {
		return &OpError{Op: "serve", Queue: c.queue, Err: errors.New("nil handler")}
	}
	if !c.serving.CompareAndSwap(false, true) {
		return &OpError{Op: "serve", Queue: c.queue, Err: ErrServing}
	}
	defer c.serving.Store(false)
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}

	s := &server{c: c, batch: !c.cfg.DisableBatching}
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		s.stop.Store(true)
		c.interrupt.Store(true)                     // stop a busy poll
		_ = c.sock.SetReadDeadline(time.Unix(1, 0)) // wake a blocked read
		close(done)
	})
	defer func() {
		if !stop() {
			<-done
			_ = c.sock.SetReadDeadline(time.Time{})
			c.interrupt.Store(false)
		}
	}()

	var flush func() error // sends the pending verdicts before each receive
	if s.batch {
		flush = s.flush
	}
	var p Packet
	for !s.stop.Load() {
		err := c.read(&p, flush)
		if err != nil {
			if errors.Is(err, ErrClosed) {
				return nil
			}
			if errors.Is(err, io.EOF) {
				return err
			}
			if s.stop.Load() {
				break
			}
			s.report(err)
			// A packet that could not be decoded still waits in the
			// kernel: drop it.
			if oe := (*OpError)(nil); errors.As(err, &oe) && oe.ID != 0 && errors.Is(err, ErrMalformed) {
				s.verdict(&p, Drop)
			}
			continue
		}
		s.verdict(&p, h(&p))
	}
	if err := s.flush(); err != nil && !errors.Is(err, ErrClosed) {
		s.report(err)
	}
	if c.closed.Load() {
		return nil
	}
	return ctx.Err()
}

// server is the state of one Serve call.
type server struct {
	c     *Conn
	batch bool
	stop  atomic.Bool

	pend    [maxPending]pendingVerdict
	n       int
	uniform bool // all pending verdicts are equal and batchable
	wbuf    []byte
}

type pendingVerdict struct {
	id uint32
	v  Verdict
}

func (s *server) report(err error) { s.c.report(err) }

// verdict applies the handler's verdict v to p.
func (s *server) verdict(p *Packet, v Verdict) {
	c := s.c
	if v.Kind() == KindDefer {
		return // stays in the tracker until SetVerdict
	}
	if err := v.check(p.Truncated()); err != nil {
		s.report(&OpError{Op: "verdict", Queue: c.queue, ID: p.ID, Verdict: v, Err: err})
		v = Drop
	}
	c.track.mu.Lock()
	_, ok := c.track.take(p.ID)
	if !ok {
		err := c.track.missingErr(p.ID)
		c.track.mu.Unlock()
		s.report(&OpError{Op: "verdict", Queue: c.queue, ID: p.ID, Verdict: v, Err: err})
		return
	}
	c.track.mu.Unlock()

	if s.n == 0 {
		s.uniform = v.batchable()
	} else if s.uniform {
		s.uniform = v.sameBatch(&s.pend[0].v)
	}
	s.pend[s.n] = pendingVerdict{id: p.ID, v: v}
	s.n++
	// A payload or L2 header may alias the receive buffer, which the next
	// read overwrites: send it now. Without batching, send everything now.
	if !s.batch || s.n == maxPending || v.holdsSlices() {
		if err := s.flush(); err != nil {
			s.report(err)
		}
	}
}

// flush sends the pending verdicts in one datagram.
func (s *server) flush() error {
	if s.n == 0 {
		return nil
	}
	c := s.c
	pend := s.pend[:s.n]
	s.n = 0
	last := pend[len(pend)-1]
	c.track.mu.Lock()
	// A batch verdict covers every queued id up to the last one, so it is
	// safe only when no deferred packet is still waiting.
	useBatch := s.uniform && len(pend) > 1 && c.track.idle()
	c.track.mu.Unlock()
	b := s.wbuf[:0]
	if useBatch {
		b = wire.AppendVerdictBatch(b, c.queue, last.id, &last.v.o, 0)
	} else {
		for i := range pend {
			b = wire.AppendVerdict(b, c.queue, pend[i].id, &pend[i].v.o, 0)
		}
	}
	s.wbuf = b
	err := c.sock.Send(b)
	for i := range pend {
		pend[i].v.o.Payload, pend[i].v.o.L2Hdr = nil, nil
	}
	if err != nil {
		return c.sendError("verdict", last.id, last.v, fmt.Errorf("sending %d verdicts: %w", len(pend), err))
	}
	if useBatch {
		c.counter.batches.Add(1)
		c.counter.countVerdict(last.v.Kind(), uint64(len(pend)))
	} else {
		for i := range pend {
			c.counter.countVerdict(pend[i].v.Kind(), 1)
		}
	}
	return nil
}
