package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// netNS is a network namespace held open by a file descriptor. A namespace
// made by newNetNS has no name: it disappears when the last descriptor
// and socket referring to it are closed, so nothing outlives the process,
// not even after a crash.
type netNS struct {
	f    *os.File
	name string // a label for messages
}

// newNetNS creates a network namespace with loopback up.
func newNetNS(name string) (*netNS, error) {
	var f *os.File
	err := onLockedThread(func() error {
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			return err
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare network namespace: %w", err)
		}
		f, err = os.Open("/proc/thread-self/ns/net")
		if serr := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); serr != nil {
			// The thread stays in the new namespace: never reuse it.
			return errTaintedThread{fmt.Errorf("return to the original namespace: %w", serr)}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	ns := &netNS{f: f, name: name}
	if err := ns.linkUp("lo"); err != nil {
		ns.Close()
		return nil, fmt.Errorf("namespace %s: loopback up: %w", name, err)
	}
	return ns, nil
}

// openNetNS opens an existing namespace by path (e.g. /run/netns/NAME).
func openNetNS(path string) (*netNS, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("network namespace: %w", err)
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err == nil && st.Type != unix.NSFS_MAGIC && st.Type != unix.PROC_SUPER_MAGIC {
		f.Close()
		return nil, fmt.Errorf("%s is not a network namespace", path)
	}
	return &netNS{f: f, name: path}, nil
}

// Fd returns the namespace's descriptor.
func (ns *netNS) Fd() int { return int(ns.f.Fd()) }

// Path returns a path that opens the namespace while ns is open, for
// APIs that take a path.
func (ns *netNS) Path() string {
	return "/proc/" + strconv.Itoa(os.Getpid()) + "/fd/" + strconv.Itoa(ns.Fd())
}

// Close releases the namespace; it vanishes once its sockets are closed too.
func (ns *netNS) Close() error { return ns.f.Close() }

// errTaintedThread marks a failure that leaves the OS thread in another
// namespace; onLockedThread then lets the thread exit with its goroutine.
type errTaintedThread struct{ error }

func (e errTaintedThread) Unwrap() error { return e.error }

// onLockedThread runs fn on a new goroutine locked to its OS thread and
// waits for it. The thread ends with the goroutine if fn fails with
// errTaintedThread.
func onLockedThread(fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		err := fn()
		if _, tainted := err.(errTaintedThread); !tainted {
			runtime.UnlockOSThread()
		}
		ch <- err
	}()
	return <-ch
}

// Do runs fn with the calling thread inside the namespace. Sockets fn
// opens stay in the namespace for their lifetime.
func (ns *netNS) Do(fn func() error) error {
	return onLockedThread(func() error {
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			return err
		}
		defer orig.Close()
		if err := unix.Setns(ns.Fd(), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("enter namespace %s: %w", ns.name, err)
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			return errTaintedThread{fmt.Errorf("leave namespace %s: %w", ns.name, err)}
		}
		return ferr
	})
}

// linkUp sets interface name up.
func (ns *netNS) linkUp(name string) error {
	return ns.Do(func() error {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return err
		}
		var b nlBuilder
		b.header(unix.RTM_NEWLINK, unix.NLM_F_REQUEST|unix.NLM_F_ACK)
		b.ifinfo(int32(ifi.Index), unix.IFF_UP, unix.IFF_UP)
		return rtnlDo(b.finish())
	})
}

// addVeth creates a veth pair: name in ns and peer in peerNS.
func (ns *netNS) addVeth(name string, peerNS *netNS, peer string) error {
	return ns.Do(func() error {
		var b nlBuilder
		b.header(unix.RTM_NEWLINK, unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_EXCL)
		b.ifinfo(0, 0, 0)
		b.attrString(unix.IFLA_IFNAME, name)
		li := b.nest(unix.IFLA_LINKINFO)
		b.attrString(unix.IFLA_INFO_KIND, "veth")
		data := b.nest(unix.IFLA_INFO_DATA)
		p := b.nest(vethInfoPeer)
		b.ifinfo(0, 0, 0)
		b.attrString(unix.IFLA_IFNAME, peer)
		b.attrU32(unix.IFLA_NET_NS_FD, uint32(peerNS.Fd()))
		b.end(p)
		b.end(data)
		b.end(li)
		return rtnlDo(b.finish())
	})
}

// addAddr assigns prefix (address and length) to interface name.
func (ns *netNS) addAddr(name string, prefix netip.Prefix) error {
	return ns.Do(func() error {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return err
		}
		fam, flags := uint8(unix.AF_INET), uint32(0)
		if prefix.Addr().Is6() {
			// No duplicate address detection: the address works at once.
			fam, flags = unix.AF_INET6, unix.IFA_F_NODAD
		}
		var b nlBuilder
		b.header(unix.RTM_NEWADDR, unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_EXCL)
		b.buf = append(b.buf, fam, uint8(prefix.Bits()), 0, unix.RT_SCOPE_UNIVERSE)
		b.buf = binary.NativeEndian.AppendUint32(b.buf, uint32(ifi.Index))
		a := prefix.Addr().AsSlice()
		b.attr(unix.IFA_LOCAL, a)
		b.attr(unix.IFA_ADDRESS, a)
		if flags != 0 {
			b.attrU32(unix.IFA_FLAGS, flags)
		}
		return rtnlDo(b.finish())
	})
}

// writeSysctl writes a network sysctl (a path under /proc/sys/net) of the
// namespace.
func (ns *netNS) writeSysctl(path, value string) error {
	return ns.Do(func() error {
		return os.WriteFile("/proc/sys/net/"+path, []byte(value), 0)
	})
}

// ifNames maps interface indexes of one namespace to names, refreshing
// its table when it meets an index it does not know.
type ifNames struct {
	ns    *netNS // nil: the caller's namespace
	mu    sync.Mutex
	names map[uint32]string
}

// name returns the name of interface index idx, "" for 0, or the number.
func (c *ifNames) name(idx uint32) string {
	if idx == 0 {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.names[idx]; ok {
		return n
	}
	c.refresh()
	if n, ok := c.names[idx]; ok {
		return n
	}
	n := "if" + strconv.FormatUint(uint64(idx), 10)
	c.names[idx] = n
	return n
}

func (c *ifNames) refresh() {
	m := make(map[uint32]string)
	list := func() error {
		ifs, err := net.Interfaces()
		for _, ifi := range ifs {
			m[uint32(ifi.Index)] = ifi.Name
		}
		return err
	}
	if c.ns != nil {
		_ = c.ns.Do(list)
	} else {
		_ = list()
	}
	c.names = m
}

// nlBuilder builds one rtnetlink request.
type nlBuilder struct{ buf []byte }

func (b *nlBuilder) header(typ, flags uint16) {
	b.buf = make([]byte, unix.SizeofNlMsghdr, 256)
	binary.NativeEndian.PutUint16(b.buf[4:], typ)
	binary.NativeEndian.PutUint16(b.buf[6:], flags)
	binary.NativeEndian.PutUint32(b.buf[8:], 1)
}

// ifinfo appends a struct ifinfomsg.
func (b *nlBuilder) ifinfo(index int32, flags, change uint32) {
	b.buf = append(b.buf, unix.AF_UNSPEC, 0, 0, 0)
	b.buf = binary.NativeEndian.AppendUint32(b.buf, uint32(index))
	b.buf = binary.NativeEndian.AppendUint32(b.buf, flags)
	b.buf = binary.NativeEndian.AppendUint32(b.buf, change)
}

func (b *nlBuilder) attr(typ uint16, data []byte) {
	b.buf = binary.NativeEndian.AppendUint16(b.buf, uint16(unix.SizeofRtAttr+len(data)))
	b.buf = binary.NativeEndian.AppendUint16(b.buf, typ)
	b.buf = append(b.buf, data...)
	b.pad()
}

func (b *nlBuilder) pad() {
	for len(b.buf)%4 != 0 {
		b.buf = append(b.buf, 0)
	}
}

func (b *nlBuilder) attrString(typ uint16, s string) { b.attr(typ, append([]byte(s), 0)) }

func (b *nlBuilder) attrU32(typ uint16, v uint32) {
	b.attr(typ, binary.NativeEndian.AppendUint32(nil, v))
}

// nest opens a nested attribute; end closes it.
func (b *nlBuilder) nest(typ uint16) int {
	at := len(b.buf)
	b.buf = binary.NativeEndian.AppendUint16(b.buf, 0)
	b.buf = binary.NativeEndian.AppendUint16(b.buf, typ|unix.NLA_F_NESTED)
	return at
}

func (b *nlBuilder) end(at int) {
	binary.NativeEndian.PutUint16(b.buf[at:], uint16(len(b.buf)-at))
}

func (b *nlBuilder) finish() []byte {
	binary.NativeEndian.PutUint32(b.buf[0:], uint32(len(b.buf)))
	return b.buf
}

// rtnlDo sends one rtnetlink request from the calling thread's namespace
// and waits for its acknowledgement.
func rtnlDo(req []byte) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("rtnetlink socket: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.Timeval{Sec: 5}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("rtnetlink send: %w", err)
	}
	buf := make([]byte, 8192)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return fmt.Errorf("rtnetlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("rtnetlink: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Type != unix.NLMSG_ERROR || len(m.Data) < 4 {
				continue
			}
			if errno := int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
				return unix.Errno(-errno)
			}
			return nil
		}
	}
}

// vethInfoPeer is VETH_INFO_PEER (linux/veth.h).
const vethInfoPeer = 1
