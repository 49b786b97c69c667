//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// runCLI runs nfq in process and returns its exit status and output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelpEveryCommand(t *testing.T) {
	code, _, stderr := runCLI(t, "--help")
	if code != 0 || !strings.Contains(stderr, "Commands:") {
		t.Fatalf("nfq --help: status %d, output %q", code, stderr)
	}
	for _, c := range []struct {
		name  string
		flags []string
	}{
		{"demo", []string{"-duration", "-json"}},
		{"watch", []string{"-q", "-verdict", "-mark", "-count", "-json", "-w", "-rule", "-netns"}},
		{"stats", []string{"-watch", "-json", "-netns"}},
		{"version", nil},
	} {
		code, _, stderr := runCLI(t, c.name, "--help")
		if code != 0 {
			t.Errorf("nfq %s --help: status %d", c.name, code)
		}
		if !strings.Contains(stderr, "Usage: nfq "+c.name) {
			t.Errorf("nfq %s --help lacks the usage line:\n%s", c.name, stderr)
		}
		for _, f := range c.flags {
			if !strings.Contains(stderr, "  "+f+" ") && !strings.Contains(stderr, "  "+f+"\n") {
				t.Errorf("nfq %s --help does not describe %s:\n%s", c.name, f, stderr)
			}
		}
		code, stdout, _ := runCLI(t, "help", c.name)
		if code != 0 || stdout != "" {
			t.Errorf("nfq help %s: status %d, stdout %q", c.name, code, stdout)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{}, "Usage: nfq"},
		{[]string{"watch"}, "-q is required"},
		{[]string{"watch", "-q", "70000"}, "invalid value"},
		{[]string{"watch", "-q", "1", "--verdict", "maybe"}, "--verdict must be accept or drop"},
		{[]string{"watch", "-q", "1", "--verdict", "drop", "--mark", "7"}, "--mark needs --verdict accept"},
		{[]string{"watch", "-q", "1", "--rule", "udp dport banana"}, "--rule"},
		{[]string{"watch", "-q", "1", "--rule", "udp dport 53", "--hook", "sideways"}, `unknown hook "sideways"`},
		{[]string{"demo", "--duration", "1ms"}, "--duration must be between"},
		{[]string{"stats", "--count", "3"}, "--count needs --watch"},
		{[]string{"stats", "extra"}, `unexpected argument "extra"`},
	} {
		code, _, stderr := runCLI(t, c.args...)
		if code != 2 {
			t.Errorf("nfq %s: status %d, want 2 (stderr %q)", strings.Join(c.args, " "), code, stderr)
		}
		if !strings.Contains(stderr, c.want) {
			t.Errorf("nfq %s: stderr %q lacks %q", strings.Join(c.args, " "), stderr, c.want)
		}
		if lines := strings.Count(strings.TrimSpace(stderr), "\n"); c.want != "Usage: nfq" && lines > 0 && !strings.Contains(stderr, "Usage:") {
			t.Errorf("nfq %s: reason is not one line: %q", strings.Join(c.args, " "), stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(stdout, "nfq ") || !strings.Contains(stdout, "go1.") {
		t.Fatalf("nfq version: status %d, output %q", code, stdout)
	}
}

// ipPacket serializes an IPv4 or IPv6 packet with correct checksums.
func ipPacket(t *testing.T, v6 bool, l4 gopacket.SerializableLayer, payload []byte) []byte {
	t.Helper()
	var ip gopacket.SerializableLayer
	var nl gopacket.NetworkLayer
	proto := layers.IPProtocolUDP
	if _, ok := l4.(*layers.TCP); ok {
		proto = layers.IPProtocolTCP
	}
	if _, ok := l4.(*layers.ICMPv4); ok {
		proto = layers.IPProtocolICMPv4
	}
	if v6 {
		ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: net.ParseIP("fd66::1"), DstIP: net.ParseIP("fd66::2")}
		ip, nl = ip6, ip6
	} else {
		ip4 := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto, SrcIP: net.ParseIP("10.66.0.1").To4(), DstIP: net.ParseIP("10.66.0.2").To4()}
		ip, nl = ip4, ip4
	}
	switch l := l4.(type) {
	case *layers.TCP:
		_ = l.SetNetworkLayerForChecksum(nl)
	case *layers.UDP:
		_ = l.SetNetworkLayerForChecksum(nl)
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ip, l4, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRewritePayload(t *testing.T) {
	for _, c := range []struct {
		name string
		v6   bool
		l4   gopacket.SerializableLayer
	}{
		{"tcp4", false, &layers.TCP{SrcPort: 40000, DstPort: portLogin, Seq: 1000, Ack: 5, ACK: true, PSH: true, Window: 500, DataOffset: 5}},
		{"udp4", false, &layers.UDP{SrcPort: 40000, DstPort: 53}},
		{"tcp6", true, &layers.TCP{SrcPort: 40000, DstPort: portLogin, Seq: 1, ACK: true, Window: 500}},
		{"udp6", true, &layers.UDP{SrcPort: 40000, DstPort: 53}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := ipPacket(t, c.v6, c.l4, []byte("user=alice password=hunter2 again hunter2\n"))
			if !checksumOK(in) {
				t.Fatal("test packet has a bad checksum")
			}
			out := rewritePayload(in, secret, masked)
			if out == nil {
				t.Fatal("not rewritten")
			}
			if len(out) != len(in) {
				t.Fatalf("length changed: %d -> %d", len(in), len(out))
			}
			if !checksumOK(out) {
				t.Error("rewritten packet has a bad checksum")
			}
			s := decode(out)
			if string(s.Payload) != "user=alice password=******* again *******\n" {
				t.Errorf("payload %q", s.Payload)
			}
			if bytes.Contains(in, masked) || !bytes.Contains(in, secret) {
				t.Error("the original packet was modified")
			}
			// The checksum is computed from scratch, not patched: a wrong
			// checksum in the input (e.g. a partial one) does not matter.
			in[len(in)-1] ^= 0xff
			bad := rewritePayload(in, secret, masked)
			if bad == nil || !checksumOK(bad) {
				t.Error("rewrite of a packet with a partial checksum has a bad checksum")
			}
		})
	}
	plain := ipPacket(t, false, &layers.UDP{SrcPort: 1, DstPort: 2}, []byte("nothing to see"))
	if rewritePayload(plain, secret, masked) != nil {
		t.Error("rewrote a packet without the secret")
	}
	if rewritePayload([]byte{0x45, 0}, secret, masked) != nil || rewritePayload(nil, secret, masked) != nil {
		t.Error("rewrote a truncated packet")
	}
	if rewritePayload(plain, []byte("a"), []byte("bb")) != nil {
		t.Error("rewrote with a length change")
	}
}

func TestDecode(t *testing.T) {
	syn := ipPacket(t, false, &layers.TCP{SrcPort: 40000, DstPort: 80, SYN: true, Seq: 7, Window: 100}, nil)
	s := decode(syn)
	if s.Proto != "tcp" || s.Src != "10.66.0.1" || s.Dst != "10.66.0.2" || s.Sport != 40000 || s.Dport != 80 || !strings.HasPrefix(s.Info, "[S] seq 7") {
		t.Errorf("tcp: %+v", s)
	}
	if s.flow() != "10.66.0.1:40000 > 10.66.0.2:80" || s.detail() != "[S]" {
		t.Errorf("tcp: flow %q detail %q", s.flow(), s.detail())
	}
	u6 := decode(ipPacket(t, true, &layers.UDP{SrcPort: 5353, DstPort: 53}, []byte("abc")))
	if u6.Proto != "udp" || u6.Family != "ip6" || u6.PayloadLen != 3 || u6.flow() != "[fd66::1]:5353 > [fd66::2]:53" {
		t.Errorf("udp6: %+v flow %q", u6, u6.flow())
	}
	ping := decode(ipPacket(t, false, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 3, Seq: 9}, []byte("x")))
	if ping.Proto != "icmp" || ping.Info != "echo request id 3 seq 9" || ping.detail() != "echo seq 9" || ping.flow() != "10.66.0.1 > 10.66.0.2" {
		t.Errorf("icmp: %+v", ping)
	}
	if s := decode(nil); s.Proto != "?" {
		t.Errorf("empty: %+v", s)
	}
	if s := decode([]byte{0x20, 1, 2}); s.Proto != "?" || !strings.Contains(s.Info, "not IP") {
		t.Errorf("garbage: %+v", s)
	}
	if s := decode(syn[:22]); s.Proto == "tcp" && s.Dport != 0 {
		t.Errorf("truncated: %+v", s)
	}
}

func TestEchoRequestChecksum(t *testing.T) {
	b := echoRequest(5, []byte("odd"))
	pkt := gopacket.NewPacket(b, layers.LayerTypeICMPv4, gopacket.Default)
	ic, ok := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	if !ok || ic.TypeCode.Type() != layers.ICMPv4TypeEchoRequest || ic.Seq != 5 {
		t.Fatalf("decoded %v", pkt)
	}
	var sum uint32
	for i := 0; i < len(b); i += 2 {
		w := uint32(b[i]) << 8
		if i+1 < len(b) {
			w |= uint32(b[i+1])
		}
		sum += w
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	if sum != 0xffff {
		t.Errorf("checksum does not verify: %#x", sum)
	}
}

func TestCaptureRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.pcapng")
	c, err := createCapture(path, 4, "udp dport 53")
	if err != nil {
		t.Fatal(err)
	}
	p1 := ipPacket(t, false, &layers.UDP{SrcPort: 1, DstPort: 53}, []byte("first"))
	p2 := ipPacket(t, true, &layers.UDP{SrcPort: 1, DstPort: 53}, []byte("second"))
	ts := time.Unix(1700000000, 123456789)
	mark := uint32(7)
	ev := packetEvent{Queue: 4, ID: 1, Hook: "input", In: "eth0", Verdict: "accept", VerdictMark: &mark}
	if err := c.write(ts, p1, len(p1), "input", ev.comment()); err != nil {
		t.Fatal(err)
	}
	if err := c.write(ts.Add(time.Millisecond), p2[:30], len(p2), "output", "second comment"); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != layers.LinkTypeRaw {
		t.Errorf("link type %v", r.LinkType())
	}
	intf, err := r.Interface(0)
	if err != nil || intf.Name != "nfqueue:4" || intf.Filter != "udp dport 53" {
		t.Errorf("interface %+v, %v", intf, err)
	}
	data, ci, opts, err := r.ReadPacketDataWithOptions()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, p1) || !ci.Timestamp.Equal(ts) || ci.Length != len(p1) {
		t.Errorf("packet 1: %x %+v", data, ci)
	}
	want := "nfqueue queue=4 id=1 hook=input in=eth0 out=- mark=0x0 verdict=accept verdict-mark=0x7"
	if len(opts.Comments) != 1 || opts.Comments[0] != want {
		t.Errorf("comment %q, want %q", opts.Comments, want)
	}
	if opts.Flags == nil || opts.Flags.Direction != pcapgo.NgEpbFlagDirectionInbound {
		t.Errorf("flags %+v, want inbound", opts.Flags)
	}
	data, ci, opts, err = r.ReadPacketDataWithOptions()
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != 30 || ci.Length != len(p2) || len(opts.Comments) != 1 || opts.Comments[0] != "second comment" ||
		opts.Flags == nil || opts.Flags.Direction != pcapgo.NgEpbFlagDirectionOutbound {
		t.Errorf("packet 2: %d bytes, %+v, %q", len(data), ci, opts.Comments)
	}
	if _, _, err := r.ReadPacketData(); err != io.EOF {
		t.Errorf("after two packets: %v", err)
	}
}

func TestPolicy(t *testing.T) {
	pl := newPolicy()
	decide := func(pkt []byte) (string, string) {
		s := decode(pkt)
		v, flow, _ := pl.decide(pkt, false, &s)
		out := v.String()
		if p, ok := v.Payload(); ok {
			if !checksumOK(p) || !bytes.Contains(p, masked) || bytes.Contains(p, secret) {
				t.Errorf("bad rewrite %x", p)
			}
		}
		return flow, out
	}
	udp := func(port layers.UDPPort) []byte {
		return ipPacket(t, false, &layers.UDP{SrcPort: 40000, DstPort: port}, []byte("x"))
	}
	tcp := func(port layers.TCPPort, payload string) []byte {
		return ipPacket(t, false, &layers.TCP{SrcPort: 40000, DstPort: port, ACK: true, Window: 9}, []byte(payload))
	}
	for _, c := range []struct {
		pkt        []byte
		flow, verd string
	}{
		{udp(portEcho), "echo", "accept"},
		{udp(portBlocked), "blocked", "drop"},
		{tcp(portLogin, ""), "login", "accept"},
		{tcp(portLogin, "password=hunter2\n"), "login", "accept payload=57B"},
		{tcp(portBulk, ""), "bulk", "accept"},
		{tcp(portBulk, "a"), "bulk", "accept"},
		{tcp(portBulk, "b"), "bulk", "accept"},
		{tcp(portBulk, "c"), "bulk", "accept mark=0x2a"},
		{tcp(portBulk, "d"), "bulk", "accept"},
		{udp(9), "other", "accept"},
	} {
		flow, verd := decide(c.pkt)
		if flow != c.flow || verd != c.verd {
			s := decode(c.pkt)
			t.Errorf("%s: flow %q verdict %q, want %q %q", s.flow(), flow, verd, c.flow, c.verd)
		}
	}
	if pl.total != 10 || pl.dropped != 1 || pl.rewritten != 1 || pl.bulkMark != 4 || pl.afterMark != 1 || pl.other != 1 {
		t.Errorf("counters %+v", pl)
	}
}

func TestStatsText(t *testing.T) {
	prev := statsTable{Time: time.Unix(100, 0), Queues: []queueRow{{Queue: 3, PortID: 77, LastID: 10}}}
	cur := statsTable{Time: time.Unix(102, 0), Queues: []queueRow{
		{Queue: 3, PortID: 77, PID: 1234, Process: "suricata", Waiting: 5, CopyMode: "packet", CopyRange: 65531, QueueDropped: 4, UserDropped: 2, LastID: 30},
		{Queue: 4, PortID: 78, CopyMode: "meta", LastID: 1},
	}}
	addRates(&cur, &prev)
	if r := cur.Queues[0].Rate; r == nil || *r != 10 {
		t.Errorf("rate %v", r)
	}
	if r := cur.Queues[0].DropRate; r == nil || *r != 3 {
		t.Errorf("drop rate %v", r)
	}
	if cur.Queues[1].Rate != nil {
		t.Error("rate for a queue without a previous reading")
	}
	var b bytes.Buffer
	writeStatsText(&b, &cur, true)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("table:\n%s", b.String())
	}
	for _, want := range []string{"QUEUE", "PID", "PROCESS", "WAITING", "DROPPED(full)", "DROPPED(socket)", "PKT/S"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("header lacks %s: %q", want, lines[0])
		}
	}
	if f := strings.Fields(lines[1]); strings.Join(f, " ") != "3 77 1234 suricata 5 packet/65531 4 2 30 10.0 3.0" {
		t.Errorf("row 1: %q", f)
	}
	if f := strings.Fields(lines[2]); strings.Join(f, " ") != "4 78 - - 0 meta 0 0 1 - -" {
		t.Errorf("row 2: %q", f)
	}
	js, err := json.Marshal(&cur)
	if err != nil || !strings.Contains(string(js), `"packets_per_sec":10`) {
		t.Errorf("json %s, %v", js, err)
	}
}

func TestWatchLine(t *testing.T) {
	pkt := ipPacket(t, false, &layers.UDP{SrcPort: 5353, DstPort: 53}, []byte("query"))
	mark := uint32(0x10)
	ev := packetEvent{Type: "packet", Time: time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC), Queue: 2, ID: 9, Hook: "output",
		Out: "eth0", Mark: 1, Len: 200, CapLen: len(pkt), summary: decode(pkt), Verdict: "accept", VerdictMark: &mark}
	got := ev.watchLine()
	want := "03:04:05.000006 q2 #9 output out=eth0 mark=0x1 UDP 10.66.0.1:5353 > 10.66.0.2:53 length 5, len 200 (copied 33) -> accept mark=0x10"
	if got != want {
		t.Errorf("line\n got %q\nwant %q", got, want)
	}
	var back map[string]any
	b, _ := json.Marshal(&ev)
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"type": "packet", "queue": 2.0, "id": 9.0, "hook": "output", "out": "eth0", "proto": "udp", "dport": 53.0, "verdict": "accept", "verdict_mark": 16.0} {
		if back[k] != v {
			t.Errorf("json %s = %v, want %v (%s)", k, back[k], v, b)
		}
	}
}
