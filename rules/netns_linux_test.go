package rules

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// This file holds the plumbing of the integration tests: throw-away network
// namespaces, running code and commands inside them, and a minimal NFQUEUE
// client that binds a queue, reads one packet and gives a verdict. The
// client exists only to show that the installed rules really queue
// traffic; it is not the library's.

// skipOrFail skips the test, unless NFQUEUE_INTEGRATION=1 asks for every
// integration test to run, in which case it fails.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("NFQUEUE_INTEGRATION") == "1" {
		t.Fatalf("%s (NFQUEUE_INTEGRATION=1, so this cannot be skipped)", msg)
	}
	t.Skip(msg)
}

// needIntegration skips (or fails, see skipOrFail) unless the test can
// create network namespaces and change nftables in them.
func needIntegration(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "integration test needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		skipOrFail(t, "integration test needs the ip command (iproute2)")
	}
}

type testNS struct {
	name string
	file *os.File
}

func (ns *testNS) fd() int { return int(ns.file.Fd()) }

// newNS creates a network namespace with lo up, deleted when the test ends
// whatever its outcome.
func newNS(t *testing.T) *testNS {
	t.Helper()
	needIntegration(t)
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	ns := &testNS{name: "nfqrules-test-" + hex.EncodeToString(b[:])}
	if out, err := exec.Command("ip", "netns", "add", ns.name).CombinedOutput(); err != nil {
		skipOrFail(t, "cannot create a network namespace: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns.name, err, out)
		}
	})
	f, err := os.Open("/run/netns/" + ns.name)
	if err != nil {
		t.Fatal(err)
	}
	ns.file = f
	t.Cleanup(func() { f.Close() }) // runs before the namespace is deleted
	if out, err := exec.Command("ip", "-n", ns.name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v: %s", err, out)
	}
	return ns
}

// do runs fn on an OS thread that has entered the namespace. Sockets fn
// creates stay in the namespace and can be used from any goroutine later.
// If the thread cannot return to its own namespace it is left locked, so
// the runtime ends it instead of reusing it.
func (ns *testNS) do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := unix.Setns(ns.fd(), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("setns back: %w", err))
			return // the thread stays locked and dies with the goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// exec runs a command inside the namespace and returns its standard
// output; the error carries its standard error.
func (ns *testNS) exec(args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.name}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%v: %w: %s", args, err, stderr.Bytes())
	}
	return stdout.String(), nil
}

// nft runs the nft command inside the namespace, for cross-checking what
// the kernel holds; without the nft binary it skips (or fails).
func (ns *testNS) nft(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		skipOrFail(t, "the cross-check needs the nft command (apt-get install nftables)")
	}
	out, err := ns.exec(append([]string{"nft"}, args...)...)
	if err != nil {
		t.Fatalf("nft: %v", err)
	}
	return out
}

// procQueue is one line of /proc/net/netfilter/nfnetlink_queue.
type procQueue struct {
	queue, portid, waiting, copyMode, copyRange, dropped, userDropped, idSeq uint64
}

// queues reads /proc/net/netfilter/nfnetlink_queue inside the namespace; a
// missing file (nfnetlink_queue not loaded yet) means no queues.
func (ns *testNS) queues(t *testing.T) map[uint16]procQueue {
	t.Helper()
	out, err := ns.exec("sh", "-c", "cat /proc/net/netfilter/nfnetlink_queue 2>/dev/null || true")
	if err != nil {
		t.Fatalf("read nfnetlink_queue: %v", err)
	}
	res := map[uint16]procQueue{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 {
			continue
		}
		var v [8]uint64
		for i := range v {
			if v[i], err = strconv.ParseUint(f[i], 10, 64); err != nil {
				t.Fatalf("bad nfnetlink_queue line %q", sc.Text())
			}
		}
		res[uint16(v[0])] = procQueue{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]}
	}
	return res
}

// Minimal NFQUEUE client (see kernel-nfqueue.md): enough to bind a queue
// in copy-packet mode, read packets and accept them with a mark.
const (
	nfnlSubsysQueue   = 3
	nfqnlMsgPacket    = 0
	nfqnlMsgVerdict   = 1
	nfqnlMsgConfig    = 2
	nfqaPacketHdr     = 1
	nfqaVerdictHdr    = 2
	nfqaMark          = 3
	nfqaPayload       = 10
	nfqaCfgCmd        = 1
	nfqaCfgParams     = 2
	nfqnlCfgCmdBind   = 1
	nfqnlCopyPacket   = 2
	nfAccept          = 1
	nlmsgHdrLen       = 16
	nfgenmsgLen       = 4
	nlaHdrLen         = 4
	nlaTypeMask       = 0x3fff
	clientRecvTimeout = 3 * time.Second
)

type nfqClient struct {
	fd    int
	queue uint16
	seq   uint32
}

func nla(typ uint16, data []byte) []byte {
	b := binary.NativeEndian.AppendUint16(nil, uint16(nlaHdrLen+len(data)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func (c *nfqClient) msg(typ uint16, flags uint16, attrs ...[]byte) []byte {
	c.seq++
	var body []byte
	body = append(body, unix.AF_UNSPEC, 0)
	body = binary.BigEndian.AppendUint16(body, c.queue)
	for _, a := range attrs {
		body = append(body, a...)
	}
	b := binary.NativeEndian.AppendUint32(nil, uint32(nlmsgHdrLen+len(body)))
	b = binary.NativeEndian.AppendUint16(b, nfnlSubsysQueue<<8|typ)
	b = binary.NativeEndian.AppendUint16(b, flags)
	b = binary.NativeEndian.AppendUint32(b, c.seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	return append(b, body...)
}

// openNFQ binds queue q inside the namespace.
func openNFQ(t *testing.T, ns *testNS, q uint16) *nfqClient {
	t.Helper()
	c := &nfqClient{fd: -1, queue: q}
	err := ns.do(func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		if err != nil {
			return err
		}
		c.fd = fd
		return unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
	})
	if c.fd >= 0 {
		t.Cleanup(func() { unix.Close(c.fd) })
	}
	if err != nil {
		t.Fatalf("netlink socket: %v", err)
	}
	tv := unix.NsecToTimeval(int64(clientRecvTimeout))
	if err := unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	params := binary.BigEndian.AppendUint32(nil, 0xffff)
	params = append(params, nfqnlCopyPacket)
	m := c.msg(nfqnlMsgConfig, unix.NLM_F_REQUEST|unix.NLM_F_ACK,
		nla(nfqaCfgCmd, []byte{nfqnlCfgCmdBind, 0, 0, 0}),
		nla(nfqaCfgParams, params))
	if err := unix.Sendto(c.fd, m, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		t.Fatalf("send config: %v", err)
	}
	msgs, err := c.recv()
	if err != nil {
		t.Fatalf("config ack: %v", err)
	}
	for _, m := range msgs {
		if m.typ == unix.NLMSG_ERROR && len(m.data) >= 4 {
			if e := int32(binary.NativeEndian.Uint32(m.data)); e != 0 {
				t.Fatalf("bind queue %d: %v", q, unix.Errno(-e))
			}
			return c
		}
	}
	t.Fatalf("bind queue %d: no ack", q)
	return nil
}

type nlMsg struct {
	typ  uint16
	data []byte
}

// recv reads one datagram of netlink messages. The kernel may leave the
// last message unpadded, so the parse accepts that.
func (c *nfqClient) recv() ([]nlMsg, error) {
	buf := make([]byte, 1<<17)
	n, _, err := unix.Recvfrom(c.fd, buf, 0)
	if err != nil {
		return nil, err
	}
	b := buf[:n]
	var msgs []nlMsg
	for len(b) >= nlmsgHdrLen {
		l := int(binary.NativeEndian.Uint32(b))
		if l < nlmsgHdrLen || l > len(b) {
			return nil, fmt.Errorf("bad netlink message length %d of %d", l, len(b))
		}
		msgs = append(msgs, nlMsg{typ: binary.NativeEndian.Uint16(b[4:]), data: b[nlmsgHdrLen:l]})
		b = b[min((l+3)&^3, len(b)):]
	}
	return msgs, nil
}

// packet waits for the next queued packet and returns its id and payload.
func (c *nfqClient) packet() (uint32, []byte, error) {
	for {
		msgs, err := c.recv()
		if err != nil {
			return 0, nil, err
		}
		for _, m := range msgs {
			if m.typ != nfnlSubsysQueue<<8|nfqnlMsgPacket || len(m.data) < nfgenmsgLen {
				continue
			}
			var id uint32
			var payload []byte
			haveID := false
			b := m.data[nfgenmsgLen:]
			for len(b) >= nlaHdrLen {
				l := int(binary.NativeEndian.Uint16(b))
				typ := binary.NativeEndian.Uint16(b[2:]) & nlaTypeMask
				if l < nlaHdrLen || l > len(b) {
					break
				}
				data := b[nlaHdrLen:l]
				switch {
				case typ == nfqaPacketHdr && len(data) >= 4:
					id, haveID = binary.BigEndian.Uint32(data), true
				case typ == nfqaPayload:
					payload = data
				}
				b = b[min((l+3)&^3, len(b)):]
			}
			if haveID {
				return id, payload, nil
			}
		}
	}
}

// accept accepts packet id, setting the packet mark if mark is not zero.
func (c *nfqClient) accept(id, mark uint32) error {
	hdr := binary.BigEndian.AppendUint32(nil, nfAccept)
	hdr = binary.BigEndian.AppendUint32(hdr, id)
	attrs := [][]byte{nla(nfqaVerdictHdr, hdr)}
	if mark != 0 {
		attrs = append(attrs, nla(nfqaMark, binary.BigEndian.AppendUint32(nil, mark)))
	}
	return unix.Sendto(c.fd, c.msg(nfqnlMsgVerdict, unix.NLM_F_REQUEST, attrs...), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
}

// containsUDPPayload reports whether an IP packet ends with payload.
func containsUDPPayload(pkt, payload []byte) bool {
	return bytes.HasSuffix(pkt, payload)
}
