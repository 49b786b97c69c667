//go:build linux

package wire

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nfqueue-go/nfqueue/internal/nstest"
)

// TestMain lets a normal user run the kernel tests inside a user namespace
// (NFQUEUE_USERNS=1), as the root package's tests do.
func TestMain(m *testing.M) {
	if code := nstest.ReexecInUserNS(); code >= 0 {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

var record = flag.Bool("record", false, "capture PACKET messages from the kernel into testdata/kernel (needs root)")

// The queue the recorded packets are queued to.
const recordQueue = 3

// A recordCase is a packet to capture: a rule, a queue configuration and
// the traffic that matches the rule.
type recordCase struct {
	name    string
	v6      bool
	rule    []string // iptables (ip6tables with v6) arguments after -A
	cfg     Config   // copy mode, range and flags; queue and command are filled in
	traffic string   // what send does, for the fixture's header
	send    func(t *testing.T, ns *nstest.NS)
	// hook and proto are what the PACKET_HDR must say.
	hook  uint8
	proto uint16
}

func defaultCfg() Config {
	return Config{HasParams: true, CopyMode: CopyPacket, CopyRange: MaxCopyRange, Mask: 0x1f, Flags: CfgFlagGSO}
}

var recordCases = []recordCase{
	{
		name:    "udp4-output",
		rule:    []string{"OUTPUT", "-p", "udp", "--dport", "9999", "-j", "NFQUEUE", "--queue-num", "3"},
		cfg:     defaultCfg(),
		traffic: `UDP 127.0.0.1:40000 -> 127.0.0.1:9999, payload "nfqueue udp4"`,
		send: func(t *testing.T, ns *nstest.NS) {
			sendUDP(t, ns, false, 40000, 9999, "nfqueue udp4", nil)
		},
		hook: 3, proto: 0x0800,
	},
	{
		name:    "udp6-output",
		v6:      true,
		rule:    []string{"OUTPUT", "-p", "udp", "--dport", "9999", "-j", "NFQUEUE", "--queue-num", "3"},
		cfg:     defaultCfg(),
		traffic: `UDP [::1]:40000 -> [::1]:9999, payload "nfqueue udp6"`,
		send: func(t *testing.T, ns *nstest.NS) {
			sendUDP(t, ns, true, 40000, 9999, "nfqueue udp6", nil)
		},
		hook: 3, proto: 0x86dd,
	},
	{
		name:    "icmp4-echo",
		rule:    []string{"OUTPUT", "-p", "icmp", "--icmp-type", "echo-request", "-j", "NFQUEUE", "--queue-num", "3"},
		cfg:     defaultCfg(),
		traffic: `ICMP echo request 127.0.0.1 -> 127.0.0.1, id 0x1234, seq 1, data "nfqueue icmp", from a raw socket`,
		send:    sendICMP,
		hook:    3, proto: 0x0800,
	},
	{
		name:    "tcp4-syn",
		rule:    []string{"OUTPUT", "-p", "tcp", "--syn", "--dport", "9998", "-j", "NFQUEUE", "--queue-num", "3"},
		cfg:     defaultCfg(),
		traffic: `TCP SYN 127.0.0.1:40001 -> 127.0.0.1:9998 (non-blocking connect to a listener)`,
		send:    sendSYN,
		hook:    3, proto: 0x0800,
	},
	{
		name: "udp4-uidgid-mark-priority",
		rule: []string{"OUTPUT", "-p", "udp", "--dport", "9999", "-j", "NFQUEUE", "--queue-num", "3"},
		cfg: Config{HasParams: true, CopyMode: CopyPacket, CopyRange: MaxCopyRange, Mask: 0x1f,
			Flags: CfgFlagGSO | CfgFlagUIDGID},
		traffic: `UDP 127.0.0.1:40002 -> 127.0.0.1:9999, payload "nfqueue uidgid", from a socket created with fsuid 1234 and fsgid 5678, with SO_MARK 0x2a and SO_PRIORITY 5`,
		send: func(t *testing.T, ns *nstest.NS) {
			sendUDP(t, ns, false, 40002, 9999, "nfqueue uidgid", &sockOpts{uid: 1234, gid: 5678, mark: 0x2a, priority: 5})
		},
		hook: 3, proto: 0x0800,
	},
	{
		name: "udp4-input-truncated",
		rule: []string{"INPUT", "-p", "udp", "--dport", "9997", "-j", "NFQUEUE", "--queue-num", "3"},
		cfg: Config{HasParams: true, CopyMode: CopyPacket, CopyRange: 32, Mask: 0x1f,
			Flags: CfgFlagGSO},
		traffic: `UDP 127.0.0.1:40003 -> 127.0.0.1:9997 with 100 bytes of payload ("0123456789" x 10), copy range 32, queued at INPUT`,
		send: func(t *testing.T, ns *nstest.NS) {
			sendUDP(t, ns, false, 40003, 9997, strings.Repeat("0123456789", 10), nil)
		},
		hook: 1, proto: 0x0800,
	},
	{
		name:    "udp6-copymeta",
		v6:      true,
		rule:    []string{"OUTPUT", "-p", "udp", "--dport", "9999", "-j", "NFQUEUE", "--queue-num", "3"},
		cfg:     Config{HasParams: true, CopyMode: CopyMeta, Mask: 0x1f, Flags: CfgFlagGSO},
		traffic: `UDP [::1]:40004 -> [::1]:9999, payload "nfqueue meta", copy mode META`,
		send: func(t *testing.T, ns *nstest.NS) {
			sendUDP(t, ns, true, 40004, 9999, "nfqueue meta", nil)
		},
		hook: 3, proto: 0x86dd,
	},
}

func kernelFixturePath(name string) string { return filepath.Join("testdata", "kernel", name+".hex") }

// TestRecordKernelPackets captures one PACKET message per case from the
// running kernel, in a throw-away network namespace. With -record it writes
// them to testdata/kernel; without, it checks that the kernel still sends
// what the fixtures hold: the same attribute types, and a header that
// decodes to the expected hook and protocol.
func TestRecordKernelPackets(t *testing.T) {
	for _, c := range recordCases {
		t.Run(c.name, func(t *testing.T) {
			ns := nstest.New(t)
			ns.IPTables(c.v6, append([]string{"-A"}, c.rule...)...)
			fd := openQueue(t, ns, c.cfg)
			c.send(t, ns)
			dgram := recvPacket(t, fd)

			m := checkPacketMessage(t, dgram, c.hook, c.proto)
			// Let the packet go, so the sender is not left waiting.
			id, _, _, _ := PacketHdr(attrValue(m, AttrPacketHdr))
			if _, err := unix.Write(fd, AppendVerdict(nil, recordQueue, id, &VerdictOpts{Code: NFAccept}, 0)); err != nil {
				t.Errorf("verdict: %v", err)
			}

			path := kernelFixturePath(c.name)
			if *record {
				writeFixture(t, path, recordHeader(c), dgram)
				t.Logf("wrote %s (%d bytes)", path, len(dgram))
				return
			}
			_, want := readFixture(t, path)
			if got, want := attrTypes(t, dgram), attrTypes(t, want); !slices.Equal(got, want) {
				t.Errorf("the kernel sent attributes %v, the fixture has %v (re-record with -record if the kernel changed)", got, want)
			}
		})
	}
}

func recordHeader(c recordCase) []string {
	var u unix.Utsname
	_ = unix.Uname(&u)
	tool := "iptables"
	if c.v6 {
		tool = "ip6tables"
	}
	mode := map[uint8]string{CopyNone: "NONE", CopyMeta: "META", CopyPacket: "PACKET"}[c.cfg.CopyMode]
	return []string{
		fmt.Sprintf("# A PACKET message captured from the kernel: %s.", c.name),
		fmt.Sprintf("# Kernel: Linux %s %s (little-endian netlink header).", unix.ByteSliceToString(u.Release[:]), unix.ByteSliceToString(u.Machine[:])),
		"# Recorded by TestRecordKernelPackets -record (internal/wire/record_linux_test.go)",
		fmt.Sprintf("# on %s, as root, in a throw-away network namespace (nstest) with lo up.", time.Now().UTC().Format("2006-01-02")),
		fmt.Sprintf("# Rule: %s -A %s", tool, strings.Join(c.rule, " ")),
		fmt.Sprintf("# Queue %d bound with one CONFIG: copy mode %s, range %d, flags %#x under mask %#x.",
			recordQueue, mode, c.cfg.CopyRange, c.cfg.Flags, c.cfg.Mask),
		"# Traffic: " + c.traffic + ".",
		"# The datagram as recvfrom returned it; ids, timestamps, IP ids and TCP",
		"# sequence numbers are whatever the kernel chose that run.",
	}
}

// openQueue opens a NETLINK_NETFILTER socket inside ns and binds
// recordQueue with cfg, waiting for the kernel's acknowledgement.
func openQueue(t *testing.T, ns *nstest.NS, cfg Config) int {
	t.Helper()
	var fd int
	ns.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		return err
	})
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	tv := unix.NsecToTimeval((5 * time.Second).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	cfg.Queue, cfg.HasCmd, cfg.Cmd = recordQueue, true, CmdBind
	if _, err := unix.Write(fd, AppendConfig(nil, 1, &cfg)); err != nil {
		t.Fatalf("send CONFIG: %v", err)
	}
	buf := make([]byte, 8192)
	n, err := unix.Read(fd, buf)
	if err != nil {
		t.Fatalf("receive ack: %v", err)
	}
	var it Messages
	it.Reset(buf[:n])
	var m Message
	if !it.Next(&m) || m.Header.Type != NLMsgError {
		t.Fatalf("no ack: % x", buf[:n])
	}
	e, err := ParseError(m.Header.Flags, m.Payload)
	if err != nil || e.Errno != 0 {
		t.Fatalf("bind: errno %d (%q), %v", e.Errno, e.ExtMsg, err)
	}
	return fd
}

// recvPacket returns the first datagram that holds a PACKET message.
func recvPacket(t *testing.T, fd int) []byte {
	t.Helper()
	buf := make([]byte, 128<<10)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			t.Fatalf("receive packet: %v", err)
		}
		var it Messages
		it.Reset(buf[:n])
		var m Message
		for it.Next(&m) {
			if typ, ok := m.IsQueue(); ok && typ == MsgPacket {
				return bytes.Clone(buf[:n])
			}
		}
	}
}

// checkPacketMessage checks that dgram is one well-formed PACKET message for
// recordQueue with the given hook and protocol, and returns it.
func checkPacketMessage(t *testing.T, dgram []byte, hook uint8, proto uint16) Message {
	t.Helper()
	var it Messages
	it.Reset(dgram)
	var m Message
	if !it.Next(&m) {
		t.Fatalf("no message: %v", it.Err())
	}
	if it.Remaining() {
		t.Errorf("more than one message in the datagram")
	}
	g, _, err := SplitGenMsg(m.Payload)
	if err != nil || g.ResID != recordQueue {
		t.Errorf("nfgenmsg %+v, %v", g, err)
	}
	_, p, h, ok := PacketHdr(attrValue(m, AttrPacketHdr))
	if !ok || p != proto || h != hook {
		t.Errorf("packet header: proto %#x hook %d ok %v, want proto %#x hook %d", p, h, ok, proto, hook)
	}
	return m
}

func attrValue(m Message, typ uint16) []byte {
	_, attrs, _ := SplitGenMsg(m.Payload)
	a := NewAttrs(attrs)
	for a.Next() {
		if a.Type() == typ {
			return a.Data()
		}
	}
	return nil
}

// attrTypes lists the attribute types of the message in dgram.
func attrTypes(t *testing.T, dgram []byte) []uint16 {
	t.Helper()
	var it Messages
	it.Reset(dgram)
	var m Message
	if !it.Next(&m) {
		t.Fatalf("no message: %v", it.Err())
	}
	_, attrs, _ := SplitGenMsg(m.Payload)
	var types []uint16
	a := NewAttrs(attrs)
	for a.Next() {
		types = append(types, a.Type())
	}
	if a.Err() != nil {
		t.Fatalf("attributes: %v", a.Err())
	}
	return types
}

type sockOpts struct {
	uid, gid, mark, priority int
}

// socketIn opens a socket inside ns; with o, the socket is created with
// fsuid and fsgid set (they become the socket file's credentials, which the
// kernel reports as NFQA_UID and NFQA_GID) and gets a mark and priority.
func socketIn(t *testing.T, ns *nstest.NS, domain, typ, proto int, o *sockOpts) int {
	t.Helper()
	var fd int
	ns.Do(func() error {
		if o != nil {
			// setfsuid and setfsgid act on this (locked) thread only.
			if err := unix.Setfsgid(o.gid); err != nil {
				return err
			}
			if err := unix.Setfsuid(o.uid); err != nil {
				return err
			}
			defer unix.Setfsgid(0)
			defer unix.Setfsuid(0)
		}
		var err error
		fd, err = unix.Socket(domain, typ|unix.SOCK_CLOEXEC, proto)
		return err
	})
	t.Cleanup(func() { unix.Close(fd) })
	if o != nil {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, o.mark); err != nil {
			t.Fatal(err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PRIORITY, o.priority); err != nil {
			t.Fatal(err)
		}
	}
	return fd
}

func loopback(v6 bool, port int) unix.Sockaddr {
	if v6 {
		return &unix.SockaddrInet6{Port: port, Addr: [16]byte{15: 1}}
	}
	return &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}
}

func sendUDP(t *testing.T, ns *nstest.NS, v6 bool, from, to int, payload string, o *sockOpts) {
	t.Helper()
	domain := unix.AF_INET
	if v6 {
		domain = unix.AF_INET6
	}
	fd := socketIn(t, ns, domain, unix.SOCK_DGRAM, 0, o)
	if err := unix.Bind(fd, loopback(v6, from)); err != nil {
		t.Fatalf("bind: %v", err)
	}
	if err := unix.Sendto(fd, []byte(payload), 0, loopback(v6, to)); err != nil {
		t.Fatalf("sendto: %v", err)
	}
}

func sendICMP(t *testing.T, ns *nstest.NS) {
	t.Helper()
	fd := socketIn(t, ns, unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP, nil)
	msg := []byte{8, 0, 0, 0, 0x12, 0x34, 0, 1} // echo request, checksum, id, seq
	msg = append(msg, "nfqueue icmp"...)
	binary.BigEndian.PutUint16(msg[2:], inetChecksum(msg))
	if err := unix.Sendto(fd, msg, 0, loopback(false, 0)); err != nil {
		t.Fatalf("sendto: %v", err)
	}
}

func sendSYN(t *testing.T, ns *nstest.NS) {
	t.Helper()
	l := socketIn(t, ns, unix.AF_INET, unix.SOCK_STREAM, 0, nil)
	if err := unix.Bind(l, loopback(false, 9998)); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(l, 1); err != nil {
		t.Fatal(err)
	}
	c := socketIn(t, ns, unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0, nil)
	if err := unix.Bind(c, loopback(false, 40001)); err != nil {
		t.Fatal(err)
	}
	if err := unix.Connect(c, loopback(false, 9998)); err != nil && err != unix.EINPROGRESS {
		t.Fatalf("connect: %v", err)
	}
}

func inetChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// errorCase is a kernel reply to capture: an acknowledgement or an error.
type errorCase struct {
	name    string
	about   string
	sockopt int // a SOL_NETLINK option to turn on first, or 0
	request func(fd int) []byte
}

var errorCases = []errorCase{
	{
		name:  "ack-bind",
		about: "the acknowledgement of a CONFIG that binds queue 4 (seq 7); acks are always capped",
		request: func(int) []byte {
			c := defaultCfg()
			c.Queue, c.HasCmd, c.Cmd = 4, true, CmdBind
			return AppendConfig(nil, 7, &c)
		},
	},
	{
		name:  "error-verdict-enoent",
		about: "the error for an acked VERDICT on packet 999 of bound queue 3, which was never queued: ENOENT, request echoed",
		request: func(int) []byte {
			return AppendVerdict(nil, recordQueue, 999, &VerdictOpts{Code: NFAccept, Set: OptMark, Mark: 1}, FlagAck)
		},
	},
	{
		name:    "error-verdict-enoent-capped",
		about:   "as error-verdict-enoent with NETLINK_CAP_ACK on: the request is not echoed (NLM_F_CAPPED)",
		sockopt: unix.NETLINK_CAP_ACK,
		request: func(int) []byte {
			return AppendVerdict(nil, recordQueue, 999, &VerdictOpts{Code: NFAccept}, FlagAck)
		},
	},
	{
		name:    "error-extack-policy",
		about:   "with NETLINK_EXT_ACK on, a CONFIG (seq 9) whose CFG_PARAMS is 3 bytes: EINVAL with extended ack TLVs (message and offset)",
		sockopt: unix.NETLINK_EXT_ACK,
		request: func(int) []byte {
			b, start := AppendHeader(nil, QueueType(MsgConfig), FlagRequest|FlagAck, 9, ProtoUnspec, recordQueue)
			b = AppendAttr(b, CfgAttrParams, []byte{0, 0, 1})
			return Finish(b, start)
		},
	},
}

// TestRecordKernelErrors captures NLMSG_ERROR replies, like
// TestRecordKernelPackets does packets.
func TestRecordKernelErrors(t *testing.T) {
	for _, c := range errorCases {
		t.Run(c.name, func(t *testing.T) {
			ns := nstest.New(t)
			fd := openQueue(t, ns, defaultCfg())
			if c.sockopt != 0 {
				if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, c.sockopt, 1); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := unix.Write(fd, c.request(fd)); err != nil {
				t.Fatalf("send: %v", err)
			}
			buf := make([]byte, 8192)
			n, err := unix.Read(fd, buf)
			if err != nil {
				t.Fatalf("receive: %v", err)
			}
			dgram := buf[:n]
			var it Messages
			it.Reset(dgram)
			var m Message
			if !it.Next(&m) || m.Header.Type != NLMsgError {
				t.Fatalf("not an NLMSG_ERROR: % x", dgram)
			}
			if _, err := ParseError(m.Header.Flags, m.Payload); err != nil {
				t.Fatalf("ParseError: %v", err)
			}
			path := kernelFixturePath(c.name)
			if *record {
				var u unix.Utsname
				_ = unix.Uname(&u)
				header := []string{
					fmt.Sprintf("# An NLMSG_ERROR captured from the kernel: %s.", c.about),
					fmt.Sprintf("# Kernel: Linux %s %s (little-endian netlink header).", unix.ByteSliceToString(u.Release[:]), unix.ByteSliceToString(u.Machine[:])),
					"# Recorded by TestRecordKernelErrors -record (internal/wire/record_linux_test.go)",
					fmt.Sprintf("# on %s, as root, in a throw-away network namespace, on a NETLINK_NETFILTER", time.Now().UTC().Format("2006-01-02")),
					"# socket that had bound queue 3 (seq 1). nlmsg_pid is the socket's port id.",
				}
				writeFixture(t, path, header, dgram)
				return
			}
			_, want := readFixture(t, path)
			var wit Messages
			wit.Reset(want)
			var wm Message
			if !wit.Next(&wm) || wm.Header.Flags != m.Header.Flags || len(wm.Payload) != len(m.Payload) {
				t.Errorf("the kernel's reply (flags %#x, %d bytes) differs in shape from the fixture (flags %#x, %d bytes)",
					m.Header.Flags, len(m.Payload), wm.Header.Flags, len(wm.Payload))
			}
		})
	}
}
