package nfqueue

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nfqueue-go/nfqueue/internal/nlsock"
)

// ReadKernelStats returns the kernel's line for every queue bound in a
// network namespace (from /proc/net/netfilter/nfnetlink_queue); netns is a
// namespace path as in Config.NetNS, empty for the caller's.
func ReadKernelStats(netns string) ([]KernelStats, error) {
	b, err := readNetFile(netns, "netfilter/nfnetlink_queue")
	if err != nil {
		return nil, err
	}
	return parseKernelStats(b)
}

// readNetFile reads a file of /proc/net as seen from netns.
func readNetFile(netns, name string) ([]byte, error) {
	var b []byte
	err := nlsock.InNetNS(netns, func() error {
		var err error
		b, err = os.ReadFile("/proc/thread-self/net/" + name)
		return err
	})
	return b, err
}

// Stats returns the Conn's counters and the kernel's view of its queue.
func (c *Conn) Stats() Stats {
	all, err := ReadKernelStats(c.cfg.NetNS)
	return c.stats(all, err)
}

// kernelStats reads the kernel's lines for the namespace of the Set's
// queues, once for all of them.
func (s *Set) kernelStats() ([]KernelStats, error) {
	if len(s.conns) == 0 {
		return nil, nil
	}
	return ReadKernelStats(s.conns[0].cfg.NetNS)
}

// stats returns the Conn's counters with its line among all, the kernel's
// lines (or the error reading them).
func (c *Conn) stats(all []KernelStats, err error) Stats {
	var s Stats
	c.counter.fill(&s)
	c.track.mu.Lock()
	s.Outstanding = c.track.n
	c.track.mu.Unlock()
	s.ReadBuffer, _ = c.sock.ReadBuffer()
	s.KernelErr = err
	if err == nil {
		s.KernelErr = fmt.Errorf("queue %d not listed by the kernel", c.queue)
		for _, k := range all {
			if k.Queue == c.queue {
				s.Kernel, s.KernelErr = k, nil
			}
		}
	}
	return s
}

// queueOwner returns who owns queue in netns, or nil when /proc does not
// list it.
func queueOwner(netns string, queue uint16) *QueueBusyError {
	all, err := ReadKernelStats(netns)
	if err != nil {
		return nil
	}
	for _, k := range all {
		if k.Queue == queue {
			e := &QueueBusyError{Queue: queue, OwnerPortID: k.PortID}
			e.OwnerPID, e.OwnerName = portOwner(netns, k.PortID)
			return e
		}
	}
	return nil
}

// NetlinkSocketOwner returns the process that holds the NETLINK_NETFILTER
// socket with the given port id in netns, from /proc/net/netlink and the
// processes' open files. It returns 0 when it cannot tell.
func NetlinkSocketOwner(netns string, portID uint32) (pid int, name string) {
	return portOwner(netns, portID)
}

func portOwner(netns string, portID uint32) (int, string) {
	b, err := readNetFile(netns, "netlink")
	if err != nil {
		return 0, ""
	}
	inode := netlinkInode(b, portID)
	if inode == "" {
		return 0, ""
	}
	pid, err := socketHolder(inode)
	if err != nil || pid == 0 {
		return 0, ""
	}
	comm, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
	return pid, strings.TrimSpace(string(comm))
}

// netlinkInode finds the inode of the NETLINK_NETFILTER (12) socket with
// port id portID in the content of /proc/net/netlink.
func netlinkInode(b []byte, portID uint32) string {
	want := strconv.FormatUint(uint64(portID), 10)
	for _, line := range bytes.Split(b, []byte("\n")) {
		// sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
		f := strings.Fields(string(line))
		if len(f) >= 10 && f[1] == "12" && f[2] == want {
			return f[9]
		}
	}
	return ""
}

// socketHolder finds a process with socket inode open.
func socketHolder(inode string) (int, error) {
	target := "socket:[" + inode + "]"
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		dir := filepath.Join("/proc", p.Name(), "fd")
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil && l == target {
				return pid, nil
			}
		}
	}
	return 0, errors.New("no process holds the socket")
}
