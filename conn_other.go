//go:build !linux

package nfqueue

import (
	"context"
	"fmt"
	"os"
	"runtime"
)

var errPlatform = fmt.Errorf("%w on %s: NFQUEUE is a Linux facility", ErrNotSupported, runtime.GOOS)

// Conn is a bound queue. On this platform it cannot be opened.
type Conn struct{ queue uint16 }

// Open returns an error wrapping ErrNotSupported: NFQUEUE exists only on Linux.
func Open(queue uint16, cfg *Config) (*Conn, error) {
	return nil, &OpError{Op: "open", Queue: queue, Err: errPlatform}
}

// Queue returns the queue number.
func (c *Conn) Queue() uint16 { return c.queue }

// PortID returns 0 on this platform.
func (c *Conn) PortID() uint32 { return 0 }

// Close does nothing on this platform.
func (c *Conn) Close() error { return nil }

// ReadPacket returns ErrNotSupported on this platform.
func (c *Conn) ReadPacket(p *Packet) error { return errPlatform }

// SetVerdict returns ErrNotSupported on this platform.
func (c *Conn) SetVerdict(id uint32, v Verdict) error { return errPlatform }

// SetVerdictBatch returns ErrNotSupported on this platform.
func (c *Conn) SetVerdictBatch(upTo uint32, v Verdict) error { return errPlatform }

// Serve returns ErrNotSupported on this platform.
func (c *Conn) Serve(ctx context.Context, h Handler) error { return errPlatform }

// Stats returns empty statistics on this platform.
func (c *Conn) Stats() Stats { return Stats{KernelErr: errPlatform} }

func (c *Conn) stats([]KernelStats, error) Stats { return c.Stats() }

func (s *Set) kernelStats() ([]KernelStats, error) { return nil, errPlatform }

// ReadKernelStats returns ErrNotSupported on this platform.
func ReadKernelStats(netns string) ([]KernelStats, error) { return nil, errPlatform }

// NetlinkSocketOwner returns 0 on this platform.
func NetlinkSocketOwner(netns string, portID uint32) (pid int, name string) { return 0, "" }

// NewConn returns ErrNotSupported on this platform.
func NewConn(f *os.File, queue uint16, cfg *Config) (*Conn, error) {
	return nil, &OpError{Op: "open", Queue: queue, Err: errPlatform}
}
