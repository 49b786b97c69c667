package nfqueue

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
)

// ErrClosed is returned by operations on a closed Conn. It is net.ErrClosed,
// so errors.Is(err, net.ErrClosed) works too.
var ErrClosed = net.ErrClosed

// Errors that Open, the verdict methods and ReadPacket return, wrapped in an
// *OpError. Match them with errors.Is.
var (
	// ErrInvalidConfig: a Config field is out of range or the combination is
	// impossible. Nothing reached the kernel.
	ErrInvalidConfig = errors.New("invalid config")
	// ErrInvalidVerdict: the verdict cannot be sent as asked, e.g. a payload
	// over MaxPayload bytes, a payload for a truncated packet, or an option
	// a batch verdict cannot carry.
	ErrInvalidVerdict = errors.New("invalid verdict")
	// ErrQueueBusy: another netlink socket owns the queue. The error is a
	// *QueueBusyError naming the owner.
	ErrQueueBusy = errors.New("queue is bound by another socket")
	// ErrPermission: the process lacks CAP_NET_ADMIN in the network
	// namespace's user namespace.
	ErrPermission = errors.New("operation needs CAP_NET_ADMIN")
	// ErrNotSupported: this kernel or platform lacks the feature asked for.
	ErrNotSupported = errors.New("not supported")
	// ErrModuleMissing: the kernel has no nfnetlink or nfnetlink_queue
	// (try modprobe nfnetlink_queue).
	ErrModuleMissing = errors.New("nfnetlink_queue not available (modprobe nfnetlink_queue)")
	// ErrOverrun: the socket's receive buffer overflowed (ENOBUFS) and the
	// kernel dropped packets (or accepted them, with fail-open). The Conn
	// keeps working; Stats counts overruns.
	ErrOverrun = errors.New("receive buffer overrun, packets lost")
	// ErrUnknownPacket: the id is above every packet id delivered on this
	// Conn: no such packet was delivered here.
	ErrUnknownPacket = errors.New("unknown packet id")
	// ErrVerdictTwice: no packet with this id awaits a verdict: it already
	// got one (from the caller, Serve or VerdictTimeout), or the id was
	// skipped (the kernel dropped that packet before delivering it).
	ErrVerdictTwice = errors.New("packet already has a verdict")
	// ErrServing: Serve is already running on this Conn.
	ErrServing = errors.New("Serve already running")
	// ErrMalformed: the kernel sent a message this package cannot decode. The
	// message is skipped.
	ErrMalformed = errMalformed
)

// OpError is the error type of this package's operations. Err is one of the
// package's errors, a syscall.Errno from the kernel (so errors.Is(err,
// unix.EPERM) works), or both.
type OpError struct {
	Op    string // "open", "bind", "receive", "verdict", "batch verdict", "close"
	Queue uint16
	// ID is the packet id a verdict error belongs to, or 0.
	ID uint32
	// Verdict is the verdict that failed, for verdict errors.
	Verdict Verdict
	Err     error
}

func (e *OpError) Error() string {
	var b strings.Builder
	b.WriteString("nfqueue: ")
	b.WriteString(e.Op)
	b.WriteString(" queue ")
	b.WriteString(strconv.Itoa(int(e.Queue)))
	if e.ID != 0 {
		b.WriteString(" packet ")
		b.WriteString(strconv.FormatUint(uint64(e.ID), 10))
	}
	if e.Op == "verdict" || e.Op == "batch verdict" {
		b.WriteString(" (")
		b.WriteString(e.Verdict.String())
		b.WriteString(")")
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *OpError) Unwrap() error { return e.Err }

// Timeout reports whether the error is a deadline expiry.
func (e *OpError) Timeout() bool {
	var t interface{ Timeout() bool }
	return errors.As(e.Err, &t) && t.Timeout()
}

// QueueBusyError reports that another socket owns the queue. It matches
// ErrQueueBusy and syscall.EPERM.
type QueueBusyError struct {
	Queue       uint16
	OwnerPortID uint32 // netlink port id of the owner, 0 if unknown
	OwnerPID    int    // process holding that socket, 0 if not found in /proc
	OwnerName   string // that process's command name
}

func (e *QueueBusyError) Error() string {
	s := fmt.Sprintf("queue %d is bound by another socket", e.Queue)
	if e.OwnerPortID != 0 {
		s += fmt.Sprintf(" (netlink port %d", e.OwnerPortID)
		if e.OwnerPID != 0 {
			s += fmt.Sprintf(", pid %d %s", e.OwnerPID, e.OwnerName)
		}
		s += ")"
	}
	return s
}

// Unwrap returns ErrQueueBusy and EPERM.
func (e *QueueBusyError) Unwrap() []error { return []error{ErrQueueBusy, syscall.EPERM} }

// wrapErrno pairs one of the package's errors with the kernel's errno so
// that errors.Is matches both.
type wrapErrno struct {
	err   error
	errno syscall.Errno
	msg   string // extended ack text, if any
}

func (e *wrapErrno) Error() string {
	s := e.err.Error() + ": " + e.errno.Error()
	if e.msg != "" {
		s += " (" + e.msg + ")"
	}
	return s
}

func (e *wrapErrno) Unwrap() []error { return []error{e.err, e.errno} }
