//go:build linux

package nfqtest

import (
	"errors"
	"net"
	"os"
	"syscall"
)

// socketPair returns the two ends of a Unix SOCK_SEQPACKET pair: a file
// for nfqueue.NewConn and the Kernel's end. SEQPACKET keeps message
// boundaries like netlink and, unlike SOCK_DGRAM, tells each end when the
// other closes.
func socketPair() (connSide *os.File, kernelSide *net.UnixConn, err error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, os.NewSyscallError("socketpair", err)
	}
	// Room for bursts of injected packets that the Conn has not read yet;
	// the system caps it at net.core.wmem_max.
	_ = syscall.SetsockoptInt(fds[1], syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4<<20)
	connSide = os.NewFile(uintptr(fds[0]), "nfqtest-conn")
	kf := os.NewFile(uintptr(fds[1]), "nfqtest-kernel")
	c, err := net.FileConn(kf)
	kf.Close()
	if err != nil {
		connSide.Close()
		return nil, nil, err
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		connSide.Close()
		return nil, nil, errors.New("nfqtest: socket pair is not a Unix socket")
	}
	return connSide, uc, nil
}

// recv takes one datagram waiting on fd without blocking. eof reports that
// the other end closed; wait that nothing is waiting.
func recv(fd uintptr, buf []byte) (n int, trunc, wait, eof bool, err error) {
	for {
		n, _, flags, _, err := syscall.Recvmsg(int(fd), buf, nil, syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return 0, false, true, false, nil
		case err == syscall.ECONNRESET:
			// The Conn closed with packets it had not read.
			return 0, false, false, true, nil
		case err != nil:
			return 0, false, false, false, os.NewSyscallError("recvmsg", err)
		case n == 0:
			// The Conn never sends an empty datagram: this is the end.
			return 0, false, false, true, nil
		}
		return n, flags&syscall.MSG_TRUNC != 0, false, false, nil
	}
}

const supported = true
