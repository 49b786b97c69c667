// Package nlsock is the netlink socket under nfqueue: an AF_NETLINK,
// NETLINK_NETFILTER socket that blocks in the Go runtime's netpoller,
// receives into caller buffers without allocating, sends from any
// goroutine, and can be opened inside another network namespace.
//
// It is the only package of the module that imports golang.org/x/sys/unix.
package nlsock

import (
	"errors"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Options configure a socket.
type Options struct {
	// NetNS is the path of a network namespace file (such as
	// /run/netns/NAME or /proc/PID/ns/net) to open the socket in; empty
	// means the caller's namespace.
	NetNS string
	// ReadBuffer is the receive buffer size to ask for: SO_RCVBUFFORCE,
	// falling back to SO_RCVBUF (capped by net.core.rmem_max). 0 leaves the
	// kernel default.
	ReadBuffer int
	// NoENOBUFS sets NETLINK_NO_ENOBUFS.
	NoENOBUFS bool
}

// Conn is a netlink socket. A Batch's receives must be called by one
// goroutine at a time; Send may be called from any number of goroutines,
// concurrently with a blocked Batch.Recv.
type Conn struct {
	f      *os.File
	rc     syscall.RawConn
	portID uint32
	closed atomic.Bool

	senders sync.Pool // of *sender
}

// sender holds what one Send needs, so that sending does not allocate.
type sender struct {
	b   []byte
	err error
	fn  func(fd uintptr) bool
}

// Open opens a netlink netfilter socket.
func Open(o Options) (*Conn, error) {
	fd := -1
	err := InNetNS(o.NetNS, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		return os.NewSyscallError("socket", err)
	})
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, err
	}
	c, err := setup(fd, o)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return c, nil
}

func setup(fd int, o Options) (*Conn, error) {
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, os.NewSyscallError("bind", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return nil, os.NewSyscallError("getsockname", err)
	}
	nsa, ok := sa.(*unix.SockaddrNetlink)
	if !ok {
		return nil, errors.New("getsockname: not a netlink address")
	}
	if o.ReadBuffer > 0 {
		if err := setReadBuffer(fd, o.ReadBuffer); err != nil {
			return nil, err
		}
	}
	if o.NoENOBUFS {
		if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_NO_ENOBUFS, 1); err != nil {
			return nil, os.NewSyscallError("setsockopt NETLINK_NO_ENOBUFS", err)
		}
	}
	// Extended acks give configuration errors a text; they are optional.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)
	return wrap(fd, nsa.Pid)
}

// FromFile returns a Conn on a duplicate of f's descriptor: a netlink socket
// opened elsewhere (e.g. passed by a privileged parent), or a datagram
// socket whose peer speaks netlink, such as a test's fake kernel. Options
// that do not apply to the socket are ignored.
func FromFile(f *os.File, o Options) (*Conn, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(x uintptr) { fd, derr = unix.FcntlInt(x, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, os.NewSyscallError("fcntl", derr)
	}
	var port uint32
	if sa, err := unix.Getsockname(fd); err == nil {
		if nsa, ok := sa.(*unix.SockaddrNetlink); ok {
			port = nsa.Pid
		}
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	if o.ReadBuffer > 0 {
		_ = setReadBuffer(fd, o.ReadBuffer)
	}
	if o.NoENOBUFS {
		_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_NO_ENOBUFS, 1)
	}
	c, err := wrap(fd, port)
	if err != nil {
		unix.Close(fd)
	}
	return c, err
}

// wrap puts fd, a non-blocking socket, under the netpoller.
func wrap(fd int, port uint32) (*Conn, error) {
	f := os.NewFile(uintptr(fd), "netlink")
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	c := &Conn{f: f, rc: rc, portID: port}
	c.senders.New = func() any {
		s := &sender{}
		s.fn = s.write
		return s
	}
	return c, nil
}

func setReadBuffer(fd, n int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n); err == nil {
		return nil
	}
	// Without CAP_NET_ADMIN in the socket's user namespace the kernel refuses
	// SO_RCVBUFFORCE; SO_RCVBUF is then capped by net.core.rmem_max.
	return os.NewSyscallError("setsockopt SO_RCVBUF", unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, n))
}

// PortID returns the socket's netlink port id.
func (c *Conn) PortID() uint32 { return c.portID }

// ReadBuffer returns the receive buffer size the kernel granted (SO_RCVBUF,
// which counts the kernel's bookkeeping overhead too).
func (c *Conn) ReadBuffer() (int, error) {
	var n int
	var serr error
	err := c.rc.Control(func(fd uintptr) {
		n, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	})
	if err != nil {
		return 0, c.closedErr(err)
	}
	return n, os.NewSyscallError("getsockopt SO_RCVBUF", serr)
}

// ErrWouldBlock is returned by Batch.TryRecv when nothing is waiting.
var ErrWouldBlock = errors.New("nlsock: no datagram waiting")

// Send sends b, one datagram that may hold several netlink messages, to the
// kernel. It is safe for concurrent use.
func (c *Conn) Send(b []byte) error {
	s := c.senders.Get().(*sender)
	s.b, s.err = b, nil
	err := c.rc.Write(s.fn)
	serr := s.err
	s.b = nil
	c.senders.Put(s)
	if err != nil {
		return c.closedErr(err)
	}
	return serr
}

func (s *sender) write(fd uintptr) bool {
	for {
		_, err := unix.Write(int(fd), s.b)
		switch err {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		case nil:
			s.err = nil
		default:
			s.err = os.NewSyscallError("sendmsg", err)
		}
		return true
	}
}

// SetReadDeadline sets the deadline for Batch.Recv; a zero time clears it.
func (c *Conn) SetReadDeadline(t time.Time) error {
	return c.closedErr(c.f.SetReadDeadline(t))
}

// Close closes the socket, unblocking a blocked Batch.Recv at once. Calls after
// the first return net.ErrClosed.
func (c *Conn) Close() error {
	if c.closed.Swap(true) {
		return net.ErrClosed
	}
	return c.f.Close()
}

// closedErr maps the poller's error for a closed file to net.ErrClosed.
func (c *Conn) closedErr(err error) error {
	if err != nil && c.closed.Load() {
		return net.ErrClosed
	}
	return err
}

// InNetNS runs fn on an OS thread switched into the network namespace at
// path, so that sockets fn opens belong to that namespace. An empty path
// runs fn directly. fn runs on a goroutine of its own, locked to its
// thread; if the thread cannot be switched back, that goroutine ends still
// locked and the runtime retires the thread.
func InNetNS(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		restored, err := inNetNS(path, fn)
		if restored {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// inNetNS switches the locked thread into path, runs fn and switches back.
// restored is false if the thread is left in another namespace.
func inNetNS(path string, fn func() error) (restored bool, err error) {
	target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return true, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(target)
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return true, &os.PathError{Op: "open", Path: "/proc/thread-self/ns/net", Err: err}
	}
	defer unix.Close(orig)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		return true, &os.PathError{Op: "setns", Path: path, Err: err}
	}
	ferr := fn()
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		return false, errors.Join(ferr, &os.PathError{Op: "setns", Path: "/proc/thread-self/ns/net", Err: err})
	}
	return true, ferr
}

// PinToCPU locks the calling goroutine to its OS thread and restricts that
// thread to the nth CPU (modulo their number) of those the thread may run
// on. The caller undoes the lock with runtime.UnlockOSThread.
func PinToCPU(nth int) error {
	runtime.LockOSThread()
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		runtime.UnlockOSThread()
		return os.NewSyscallError("sched_getaffinity", err)
	}
	var cpus []int
	for cpu := 0; cpu < len(allowed)*64; cpu++ {
		if allowed.IsSet(cpu) {
			cpus = append(cpus, cpu)
		}
	}
	if len(cpus) == 0 {
		runtime.UnlockOSThread()
		return errors.New("no CPU allowed")
	}
	var set unix.CPUSet
	set.Set(cpus[nth%len(cpus)])
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		runtime.UnlockOSThread()
		return os.NewSyscallError("sched_setaffinity", err)
	}
	return nil
}

// mmsghdr is struct mmsghdr; Go pads it to the alignment of unix.Msghdr,
// as C does.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// Batch receives up to len(bufs) datagrams with one recvmmsg call. It is
// used by the socket's single reader.
type Batch struct {
	c      *Conn
	hdrs   []mmsghdr
	iovs   []unix.Iovec
	n      int
	err    error
	recvFn func(fd uintptr) bool
	tryFn  func(fd uintptr)
}

// NewBatch prepares receiving into bufs, which must stay valid as long as
// the Batch is used.
func (c *Conn) NewBatch(bufs [][]byte) *Batch {
	b := &Batch{c: c, hdrs: make([]mmsghdr, len(bufs)), iovs: make([]unix.Iovec, len(bufs))}
	for i, buf := range bufs {
		b.iovs[i].Base = &buf[0]
		b.iovs[i].SetLen(len(buf))
		b.hdrs[i].hdr.Iov = &b.iovs[i]
		b.hdrs[i].hdr.Iovlen = 1
	}
	b.recvFn = b.recv
	b.tryFn = func(fd uintptr) { b.recv(fd) }
	return b
}

// Recv waits for at least one datagram and receives as many as are
// waiting, up to the number of buffers, and returns how many.
func (b *Batch) Recv() (int, error) {
	if err := b.c.rc.Read(b.recvFn); err != nil {
		return 0, b.c.closedErr(err)
	}
	return b.result()
}

// TryRecv is Recv without waiting: it returns ErrWouldBlock when nothing
// is waiting.
func (b *Batch) TryRecv() (int, error) {
	if err := b.c.rc.Control(b.tryFn); err != nil {
		return 0, b.c.closedErr(err)
	}
	if b.err == unix.EAGAIN {
		return 0, ErrWouldBlock
	}
	return b.result()
}

// Len returns the length of datagram i of the last receive and whether it
// was truncated to its buffer.
func (b *Batch) Len(i int) (n int, trunc bool) {
	h := &b.hdrs[i]
	return int(h.n), h.hdr.Flags&unix.MSG_TRUNC != 0
}

func (b *Batch) result() (int, error) {
	if b.err != nil {
		return 0, os.NewSyscallError("recvmmsg", b.err)
	}
	return b.n, nil
}

func (b *Batch) recv(fd uintptr) bool {
	for i := range b.hdrs {
		b.hdrs[i].hdr.Flags = 0
	}
	for {
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(len(b.hdrs)), unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			b.n, b.err = int(n), nil
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			b.err = unix.EAGAIN
			return false
		default:
			b.n, b.err = 0, errno
			return true
		}
	}
}
