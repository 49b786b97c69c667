package nfqueue

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
)

// Set is a range of queues served together, as filled by a rule with
// --queue-balance first:last (the kernel spreads flows over the queues by a
// hash of their addresses) or with --queue-cpu-fanout as well (by the CPU
// that handles the packet). Each queue has its own socket and, in Serve,
// its own reader goroutine, so the queues are served in parallel.
type Set struct {
	conns []*Conn
	pin   bool
}

// SetOptions configure OpenSet beyond the per-queue Config.
type SetOptions struct {
	// PinReaders locks the reader goroutine of queue i to its own OS
	// thread, bound to the ith CPU the process may run on (modulo their
	// number). It suits --queue-cpu-fanout, where queue i receives the
	// packets of CPU i.
	PinReaders bool
}

// OpenSet opens queues first, first+1, ..., first+n-1 with the same Config.
// If one fails, those already open are closed.
func OpenSet(first uint16, n int, cfg *Config, opts *SetOptions) (*Set, error) {
	if n < 1 || int(first)+n-1 > 0xffff {
		return nil, &OpError{Op: "open", Queue: first, Err: fmt.Errorf("%w: %d queues from %d", ErrInvalidConfig, n, first)}
	}
	s := &Set{}
	if opts != nil {
		s.pin = opts.PinReaders
	}
	for i := 0; i < n; i++ {
		c, err := Open(first+uint16(i), cfg)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.conns = append(s.conns, c)
	}
	return s, nil
}

// Conns returns the Set's connections, in queue order.
func (s *Set) Conns() []*Conn { return s.conns }

// Conn returns the connection of queue q, or nil if q is not in the Set.
// Use it to give a deferred packet its verdict: s.Conn(p.Queue).SetVerdict.
func (s *Set) Conn(q uint16) *Conn {
	if len(s.conns) == 0 || q < s.conns[0].queue || int(q-s.conns[0].queue) >= len(s.conns) {
		return nil
	}
	return s.conns[q-s.conns[0].queue]
}

// Serve serves every queue of the Set with h, one goroutine per queue, so h
// runs concurrently for packets of different queues. It returns when all
// have stopped: nil after Close, ctx.Err() when ctx is done, or the first
// other error (which stops the others).
func (s *Set) Serve(ctx context.Context, h Handler) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	errs := make([]error, len(s.conns))
	for i, c := range s.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.pin {
				if err := pinToCPU(i); err != nil {
					errs[i] = &OpError{Op: "serve", Queue: c.queue, Err: err}
					cancel(errs[i])
					return
				}
				defer runtime.UnlockOSThread()
			}
			errs[i] = c.Serve(ctx, h)
			if errs[i] != nil && !errors.Is(errs[i], context.Canceled) && !errors.Is(errs[i], context.DeadlineExceeded) {
				cancel(errs[i])
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Close closes every queue of the Set.
func (s *Set) Close() error {
	var errs []error
	for _, c := range s.conns {
		if err := c.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Stats returns the counters of all queues added up. The kernel's lines
// are summed too; Kernel.Queue is the first queue and Kernel.LastID the
// highest of the queues' last ids.
func (s *Set) Stats() Stats {
	var sum Stats
	all, err := s.kernelStats()
	for i, c := range s.conns {
		st := c.stats(all, err)
		sum.Received += st.Received
		sum.Accepted += st.Accepted
		sum.Dropped += st.Dropped
		sum.Queued += st.Queued
		sum.Repeated += st.Repeated
		sum.Stopped += st.Stopped
		sum.BatchVerdicts += st.BatchVerdicts
		sum.Outstanding += st.Outstanding
		sum.Timeouts += st.Timeouts
		sum.Overruns += st.Overruns
		sum.Truncated += st.Truncated
		sum.Malformed += st.Malformed
		sum.VerdictErrors += st.VerdictErrors
		sum.ReadBuffer += st.ReadBuffer
		if st.KernelErr != nil && sum.KernelErr == nil {
			sum.KernelErr = st.KernelErr
		}
		k := st.Kernel
		if i == 0 {
			sum.Kernel = k
			continue
		}
		sum.Kernel.Waiting += k.Waiting
		sum.Kernel.QueueDropped += k.QueueDropped
		sum.Kernel.UserDropped += k.UserDropped
		sum.Kernel.LastID = max(sum.Kernel.LastID, k.LastID)
	}
	return sum
}
