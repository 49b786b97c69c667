package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Golden-byte tests: every message the package builds, compared byte for
// byte with testdata/golden/*.hex. Those files are our encoder's output
// (rewritten with -update); what vouches for them is TestLibnfqCaptures,
// which compares each with the bytes libnetfilter_queue sends for the same
// request (testdata/libnfq/*.hex, captured with strace), and the
// hand-derived literals below for what no library builds.

// requireLittleEndian skips byte-exact tests on big-endian hosts: netlink
// headers are in host byte order and the fixtures were made on x86_64.
func requireLittleEndian(t testing.TB) {
	t.Helper()
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("fixtures hold little-endian netlink headers")
	}
}

// The packet built into verdicts with a payload: a 31-byte IPv4/UDP datagram
// 127.0.0.1:1234 -> 127.0.0.1:9999 carrying "abc" (odd length, so the
// attribute needs padding).
var oddPacket = []byte{
	0x45, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x3c, 0xcc,
	0x7f, 0x00, 0x00, 0x01, 0x7f, 0x00, 0x00, 0x01, 0x04, 0xd2, 0x27, 0x0f,
	0x00, 0x0b, 0x00, 0x00, 0x61, 0x62, 0x63,
}

// An Ethernet header 02:00:00:00:00:01 -> 02:00:00:00:00:02, IPv4.
var l2Header = []byte{0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00}

func labels() (l, mask [16]byte) {
	for i := range l {
		l[i], mask[i] = byte(i), 0xf0|byte(i)
	}
	return l, mask
}

// The sequence numbers Conn uses for its first CONFIG requests (bind, then
// the unbind in Close): a counter with the top bit set.
const (
	seqBind   = 1 | 1<<31
	seqUnbind = 2 | 1<<31
)

// The queue of the golden verdicts; 258 = 0x0102 shows the byte order of res_id.
const goldenQueue = 258

type goldenCase struct {
	name   string   // testdata/golden/<name>.hex
	about  []string // header lines: what the message is
	libnfq string   // the libnfq capture it is checked against, if any
	// emptyCT: ours carries an empty NFQA_CT nest that libnfq does not
	// send. Its presence makes the kernel adjust TCP sequence numbers when
	// a replacement payload changes the length (nfqnl_recv_verdict calls
	// seq_adjust only when NFQA_CT was parsed), so every payload verdict
	// carries one.
	emptyCT bool
	build   func(b []byte) []byte
}

func verdict(id uint32, v VerdictOpts) func([]byte) []byte {
	return func(b []byte) []byte { return AppendVerdict(b, goldenQueue, id, &v, 0) }
}

func batch(id uint32, v VerdictOpts) func([]byte) []byte {
	return func(b []byte) []byte { return AppendVerdictBatch(b, goldenQueue, id, &v, 0) }
}

func config(seq uint32, c Config) func([]byte) []byte {
	return func(b []byte) []byte { return AppendConfig(b, seq, &c) }
}

var goldenCases = func() []goldenCase {
	lab, mask := labels()
	return []goldenCase{
		{
			name:   "bind-default",
			about:  []string{"Bind queue 258 with the zero nfqueue.Config: CMD BIND, PARAMS copy packet 65531, FLAGS GSO under MASK of all five flags; one acked message, sequence 0x80000001."},
			libnfq: "bind-default",
			build: config(seqBind, Config{Queue: goldenQueue, HasCmd: true, Cmd: CmdBind, HasParams: true,
				CopyMode: CopyPacket, CopyRange: MaxCopyRange, Mask: 0x1f, Flags: CfgFlagGSO}),
		},
		{
			name:   "bind-range-maxlen-failopen-uidgid",
			about:  []string{"Bind queue 1: copy packet range 128, QUEUE_MAXLEN 4096, FLAGS FAIL_OPEN|GSO|UID_GID under MASK 0x1f."},
			libnfq: "bind-range-maxlen-failopen-uidgid",
			build: config(seqBind, Config{Queue: 1, HasCmd: true, Cmd: CmdBind, HasParams: true,
				CopyMode: CopyPacket, CopyRange: 128, MaxLen: 4096, Mask: 0x1f,
				Flags: CfgFlagFailOpen | CfgFlagGSO | CfgFlagUIDGID}),
		},
		{
			name:   "bind-copymeta",
			about:  []string{"Bind queue 2 in copy mode META (range 0), FLAGS GSO under MASK 0x1f."},
			libnfq: "bind-copymeta",
			build: config(seqBind, Config{Queue: 2, HasCmd: true, Cmd: CmdBind, HasParams: true,
				CopyMode: CopyMeta, Mask: 0x1f, Flags: CfgFlagGSO}),
		},
		{
			name:   "unbind",
			about:  []string{"Unbind queue 258 (what Conn.Close sends), sequence 0x80000002."},
			libnfq: "unbind",
			build:  config(seqUnbind, Config{Queue: goldenQueue, HasCmd: true, Cmd: CmdUnbind}),
		},
		{name: "verdict-accept", about: []string{"VERDICT accept, packet 1."}, libnfq: "verdict-accept",
			build: verdict(1, VerdictOpts{Code: NFAccept})},
		{name: "verdict-drop", about: []string{"VERDICT drop, packet 2."}, libnfq: "verdict-drop",
			build: verdict(2, VerdictOpts{Code: NFDrop})},
		{name: "verdict-repeat-mark", about: []string{"VERDICT repeat with mark 0x10, packet 3."}, libnfq: "verdict-repeat-mark",
			build: verdict(3, VerdictOpts{Code: NFRepeat, Set: OptMark, Mark: 0x10})},
		{name: "verdict-queue5-bypass", about: []string{"VERDICT queue to 5 with bypass, packet 4."}, libnfq: "verdict-queue5-bypass",
			build: verdict(4, VerdictOpts{Code: 5<<VerdictQBits | NFQueue | VerdictFlagBypass})},
		{name: "verdict-mark-connmark", about: []string{"VERDICT accept with mark 7 and connmark 0x2a (nested NFQA_CT with CTA_MARK), packet 5."},
			libnfq: "verdict-mark-connmark",
			build:  verdict(5, VerdictOpts{Code: NFAccept, Set: OptMark | OptConnMark, Mark: 7, ConnMark: 0x2a})},
		{name: "verdict-priority", about: []string{"VERDICT accept with priority 6, packet 6."}, libnfq: "verdict-priority",
			build: verdict(6, VerdictOpts{Code: NFAccept, Set: OptPriority, Priority: 6})},
		{name: "verdict-ctlabels", about: []string{"VERDICT accept with ct labels 00..0f under mask f0..ff (NFQA_CT with CTA_LABELS, CTA_LABELS_MASK), packet 7."},
			libnfq: "verdict-ctlabels",
			build:  verdict(7, VerdictOpts{Code: NFAccept, Set: OptLabels, Labels: lab, LabelsMask: mask})},
		{name: "verdict-vlan", about: []string{"VERDICT accept with VLAN proto 0x8100, TCI 0x2064, packet 8."}, libnfq: "verdict-vlan",
			build: verdict(8, VerdictOpts{Code: NFAccept, Set: OptVLAN, VLANProto: 0x8100, VLANTCI: 0x2064})},
		{name: "verdict-l2hdr", about: []string{"VERDICT accept with a 14-byte L2 header, packet 9."}, libnfq: "verdict-l2hdr",
			build: verdict(9, VerdictOpts{Code: NFAccept, Set: OptL2Hdr, L2Hdr: l2Header})},
		{name: "verdict-payload-odd", about: []string{"VERDICT accept with a 31-byte replacement payload (odd length: nla_len 35, then padding), packet 11,",
			"and the empty NFQA_CT nest every payload verdict carries (for the kernel's TCP sequence fix-up)."},
			libnfq: "verdict-payload-odd-mnl", emptyCT: true,
			build: verdict(11, VerdictOpts{Code: NFAccept, Set: OptPayload, Payload: oddPacket})},
		{name: "batch-accept", about: []string{"VERDICT_BATCH accept up to packet 12."}, libnfq: "batch-accept",
			build: batch(12, VerdictOpts{Code: NFAccept})},
		{name: "batch-mark", about: []string{"VERDICT_BATCH accept with mark 0x10 up to packet 13."}, libnfq: "batch-mark",
			build: batch(13, VerdictOpts{Code: NFAccept, Set: OptMark, Mark: 0x10})},
		{name: "batch-mark-priority", about: []string{"VERDICT_BATCH drop with mark 0x10 and priority 3 up to packet 0xfffffffe (what Serve sends for a uniform burst)."},
			build: batch(0xfffffffe, VerdictOpts{Code: NFDrop, Set: OptMark | OptPriority, Mark: 0x10, Priority: 3})},
		{name: "verdict-all-options", about: []string{"VERDICT queue to 0x1234 with every option, packet 0xdeadbeef: the attribute order of AppendVerdict (mark, priority, CT, VLAN, L2HDR, PAYLOAD)."},
			build: verdict(0xdeadbeef, VerdictOpts{Code: 0x1234<<16 | NFQueue, Set: OptMark | OptConnMark | OptPriority | OptPayload | OptLabels | OptVLAN | OptL2Hdr,
				Mark: 1, ConnMark: 2, Priority: 3, Payload: oddPacket[:20], Labels: lab, LabelsMask: mask, VLANProto: 0x88a8, VLANTCI: 0xffff, L2Hdr: l2Header})},
	}
}()

func goldenHeader(c goldenCase) []string {
	var h []string
	for _, a := range c.about {
		h = append(h, "# "+a)
	}
	h = append(h, "#", "# Bytes: written by our encoder (internal/wire), regenerated with")
	h = append(h, "#   go test ./internal/wire -run TestGolden -update")
	if c.libnfq != "" {
		h = append(h, fmt.Sprintf("# Checked by TestLibnfqCaptures against testdata/libnfq/%s.hex,", c.libnfq))
		h = append(h, "# the bytes libnetfilter_queue 1.0.5 sends for the same request (strace, Linux 6.18).")
		if c.emptyCT {
			h = append(h, "# Deliberate difference: libnfq sends no NFQA_CT; ours carries an empty one, whose",
				"# presence makes the kernel adjust TCP sequence numbers after a length change.")
		}
	} else {
		h = append(h, "# No libnetfilter_queue call builds this message; the layout follows the kernel")
		h = append(h, "# headers (nfnetlink_queue.h, nfnetlink_conntrack.h) and is checked field by")
		h = append(h, "# field by TestGoldenByHand.")
	}
	return h
}

func goldenPath(name string) string { return filepath.Join("testdata", "golden", name+".hex") }

func TestGolden(t *testing.T) {
	requireLittleEndian(t)
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			got := c.build(nil)
			if *update {
				writeFixture(t, goldenPath(c.name), goldenHeader(c), got)
				return
			}
			_, want := readFixture(t, goldenPath(c.name))
			checkBytes(t, c.name, got, want)

			// Appending after other messages changes nothing but the offset.
			prefix := AppendVerdict(nil, 9, 9, &VerdictOpts{Code: NFAccept, Set: OptPayload, Payload: []byte{1, 2, 3}}, 0)
			b := c.build(bytes.Clone(prefix))
			checkBytes(t, c.name+" after another message", b[len(prefix):], want)
			checkBytes(t, c.name+" prefix", b[:len(prefix)], prefix)
			if len(b)%4 != 0 {
				t.Errorf("buffer length %d not padded to 4", len(b))
			}
		})
	}
	// No stray fixtures: every file in testdata/golden has a case.
	files, _ := filepath.Glob(goldenPath("*"))
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".hex")
		if !slices.ContainsFunc(goldenCases, func(c goldenCase) bool { return c.name == name }) {
			t.Errorf("%s has no golden case", f)
		}
	}
}

// TestGoldenByHand pins the messages no library builds to bytes derived by
// hand from the kernel headers.
func TestGoldenByHand(t *testing.T) {
	requireLittleEndian(t)
	lab, mask := labels()
	want := []byte{
		0xa4, 0x00, 0x00, 0x00, // nlmsg_len 164
		0x01, 0x03, 0x01, 0x00, // nlmsg_type NFNL_SUBSYS_QUEUE<<8 | NFQNL_MSG_VERDICT; flags NLM_F_REQUEST
		0xef, 0xbe, 0xad, 0xde, // nlmsg_seq = packet id 0xdeadbeef
		0x00, 0x00, 0x00, 0x00, // nlmsg_pid 0 (the kernel)
		0x00, 0x00, 0x01, 0x02, // nfgenmsg: AF_UNSPEC, NFNETLINK_V0, res_id htons(258)
		0x0c, 0x00, 0x02, 0x00, // nla_len 12, NFQA_VERDICT_HDR
		0x12, 0x34, 0x00, 0x03, //   verdict htonl(0x1234<<16 | NF_QUEUE)
		0xde, 0xad, 0xbe, 0xef, //   id htonl(0xdeadbeef)
		0x08, 0x00, 0x03, 0x00, // nla_len 8, NFQA_MARK
		0x00, 0x00, 0x00, 0x01, //   htonl(1)
		0x08, 0x00, 0x15, 0x00, // nla_len 8, NFQA_PRIORITY (21)
		0x00, 0x00, 0x00, 0x03, //   htonl(3)
		0x34, 0x00, 0x0b, 0x80, // nla_len 52, NFQA_CT (11) | NLA_F_NESTED
		0x08, 0x00, 0x08, 0x00, //   nla_len 8, CTA_MARK (8)
		0x00, 0x00, 0x00, 0x02, //     htonl(2)
		0x14, 0x00, 0x16, 0x00, //   nla_len 20, CTA_LABELS (22)
	}
	want = append(want, lab[:]...)
	want = append(want,
		0x14, 0x00, 0x17, 0x00, //   nla_len 20, CTA_LABELS_MASK (23)
	)
	want = append(want, mask[:]...)
	want = append(want,
		0x14, 0x00, 0x13, 0x80, // nla_len 20, NFQA_VLAN (19) | NLA_F_NESTED
		0x06, 0x00, 0x01, 0x00, //   nla_len 6, NFQA_VLAN_PROTO
		0x88, 0xa8, 0x00, 0x00, //     htons(0x88a8), padding
		0x06, 0x00, 0x02, 0x00, //   nla_len 6, NFQA_VLAN_TCI
		0xff, 0xff, 0x00, 0x00, //     htons(0xffff), padding
		0x12, 0x00, 0x14, 0x00, // nla_len 18, NFQA_L2HDR (20)
	)
	want = append(want, l2Header...)
	want = append(want, 0x00, 0x00, // padding
		0x18, 0x00, 0x0a, 0x00, // nla_len 24, NFQA_PAYLOAD (10)
	)
	want = append(want, oddPacket[:20]...)
	c := goldenCases[slices.IndexFunc(goldenCases, func(c goldenCase) bool { return c.name == "verdict-all-options" })]
	checkBytes(t, "verdict-all-options", c.build(nil), want)

	// A datagram of two verdicts, as Serve's flush sends: the second starts
	// right after the first's padding.
	want2 := []byte{
		0x2c, 0x00, 0x00, 0x00, 0x01, 0x03, 0x01, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // len 44 (padding counted), VERDICT, REQUEST, seq 7
		0x00, 0x00, 0x00, 0x03, // queue 3
		0x0c, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x07, // accept id 7
		0x04, 0x00, 0x0b, 0x80, // NFQA_CT|NLA_F_NESTED, empty: asks for the TCP sequence fix-up
		0x05, 0x00, 0x0a, 0x00, 0xaa, 0x00, 0x00, 0x00, // payload aa (nla_len 5), padding
		0x20, 0x00, 0x00, 0x00, 0x01, 0x03, 0x05, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // len 32, VERDICT, REQUEST|ACK, seq 8
		0x00, 0x00, 0x00, 0x03, // queue 3
		0x0c, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, // drop id 8
	}
	b := AppendVerdict(nil, 3, 7, &VerdictOpts{Code: NFAccept, Set: OptPayload, Payload: []byte{0xaa}}, 0)
	b = AppendVerdict(b, 3, 8, &VerdictOpts{Code: NFDrop}, FlagAck)
	checkBytes(t, "two verdicts", b, want2)

	// Options a batch cannot carry are left out, not encoded.
	all := VerdictOpts{Code: NFAccept, Set: 0x7f, Mark: 1, Priority: 2, Payload: []byte{1}, L2Hdr: []byte{2}}
	got := AppendVerdictBatch(nil, goldenQueue, 13, &all, 0)
	wantBatch := batch(13, VerdictOpts{Code: NFAccept, Set: OptMark | OptPriority, Mark: 1, Priority: 2})(nil)
	checkBytes(t, "batch with every option", got, wantBatch)

	// A CONFIG with no attributes at all.
	checkBytes(t, "empty config", AppendConfig(nil, 5, &Config{Queue: 0xffff}), []byte{
		0x14, 0x00, 0x00, 0x00, 0x02, 0x03, 0x05, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0xff, 0xff,
	})
}

// TestLibnfqCaptures compares our messages with what libnetfilter_queue
// sends for the same requests. Where libnfq builds the same message the
// bytes must be identical once nlmsg_seq is cleared (libnfq sends 0, we
// send the packet id or our request counter). Where it builds the request
// differently (separate CONFIG messages, each acked, instead of our one)
// the union of its attributes must equal ours.
func TestLibnfqCaptures(t *testing.T) {
	requireLittleEndian(t)
	type libnfqCase struct {
		file  string
		ours  func([]byte) []byte
		exact bool // identical but for nlmsg_seq (and alignLen)
		// alignLen also ignores a final nlmsg_len that libnfq counts
		// without padding where we count it with padding.
		alignLen bool
		emptyCT  bool // see goldenCase.emptyCT
	}
	cases := []libnfqCase{
		{file: "verdict-payload-odd-classic", exact: true, alignLen: true, emptyCT: true,
			ours: verdict(10, VerdictOpts{Code: NFAccept, Set: OptPayload, Payload: oddPacket})},
	}
	for _, c := range goldenCases {
		if c.libnfq == "" {
			continue
		}
		cases = append(cases, libnfqCase{file: c.libnfq, ours: c.build, exact: !strings.HasPrefix(c.name, "bind-"), emptyCT: c.emptyCT})
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "libnfq", "*.hex"))
	if len(files) != len(cases) {
		t.Errorf("%d libnfq fixtures, %d cases", len(files), len(cases))
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join("testdata", "libnfq", c.file+".hex")
			_, theirs := readFixture(t, path)
			ours := c.ours(nil)
			if c.emptyCT {
				var found bool
				ours, found = withoutEmptyNest(t, ours, AttrCT)
				if !found {
					t.Errorf("ours has no empty NFQA_CT nest")
				}
			}
			if c.exact {
				checkBytes(t, "ours vs libnfq (nlmsg_seq cleared)", normalize(ours, c.alignLen), normalize(theirs, c.alignLen))
			}
			got, want := canonical(t, ours), canonical(t, theirs)
			if !slices.Equal(got, want) {
				t.Errorf("attributes differ\nours:\n  %s\nlibnfq:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		})
	}
}

// withoutEmptyNest removes the empty nested attribute typ from the one
// message in b, and reports whether it was there.
func withoutEmptyNest(t *testing.T, b []byte, typ uint16) ([]byte, bool) {
	t.Helper()
	var it Messages
	it.Reset(b)
	var m Message
	if !it.Next(&m) || it.Remaining() {
		t.Fatalf("not one message: %v", it.Err())
	}
	out := bytes.Clone(b[:HeaderLen+GenMsgLen])
	found := false
	a := NewAttrs(m.Payload[GenMsgLen:])
	for a.Next() {
		if a.typ == typ|AttrNested && len(a.Data()) == 0 {
			found = true
			continue
		}
		out = AppendAttr(out, a.typ, a.Data())
	}
	if a.Err() != nil {
		t.Fatal(a.Err())
	}
	binary.NativeEndian.PutUint32(out, uint32(len(out)))
	return out, found
}

// normalize clears the sequence number of every message of b and, with
// alignLen, rounds every nlmsg_len up to a multiple of four.
func normalize(b []byte, alignLen bool) []byte {
	b = bytes.Clone(b)
	for off := 0; off+HeaderLen <= len(b); {
		l := int(binary.NativeEndian.Uint32(b[off:]))
		if l < HeaderLen {
			break
		}
		binary.NativeEndian.PutUint32(b[off+8:], 0)
		if alignLen {
			binary.NativeEndian.PutUint32(b[off:], uint32(align4(l)))
		}
		off += align4(l)
	}
	return b
}

// canonical lists what a run of messages asks of the kernel: one line per
// attribute (nested ones flattened to a path), prefixed with the message
// type, flags and nfgenmsg, sorted and deduplicated. Sequence numbers,
// attribute order, padding and how requests are split into messages do not
// show.
func canonical(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	var it Messages
	it.Reset(b)
	var m Message
	for it.Next(&m) {
		g, attrs, err := SplitGenMsg(m.Payload)
		if err != nil {
			t.Fatalf("nfgenmsg: %v", err)
		}
		prefix := fmt.Sprintf("%s flags=%s family=%d version=%d queue=%d", msgTypeName(m.Header.Type),
			msgFlagNames(m.Header.Type, m.Header.Flags), g.Family, g.Version, g.ResID)
		ns := nsPacket
		if typ, _ := m.IsQueue(); typ == MsgConfig {
			ns = nsConfig
		}
		out = appendCanonical(t, out, prefix, attrs, ns)
	}
	if err := it.Err(); err != nil {
		t.Fatalf("messages: %v", err)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func appendCanonical(t *testing.T, out []string, prefix string, b []byte, ns attrNS) []string {
	a := NewAttrs(b)
	for a.Next() {
		raw := a.typ
		name := prefix + " " + attrName(ns, raw)
		if child, ok := childNS(ns, raw); ok {
			out = append(out, fmt.Sprintf("%s (nest of %d bytes)", name, len(a.Data())))
			out = appendCanonical(t, out, name+" /", a.Data(), child)
			continue
		}
		out = append(out, fmt.Sprintf("%s = %x", name, a.Data()))
	}
	if err := a.Err(); err != nil {
		t.Fatalf("attributes: %v", err)
	}
	return out
}

// TestFixtureFilesAnnotated keeps the fixture files in their generated
// form. With -update it re-annotates them, keeping their headers and bytes.
func TestFixtureFilesAnnotated(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*", "*.hex"))
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		header, data, err := parseFixture(src)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if len(header) == 0 {
			t.Errorf("%s: no header saying where its bytes came from", f)
		}
		if *update {
			writeFixture(t, f, header, data)
			continue
		}
		if !bytes.Equal(formatFixture(header, data), src) {
			t.Errorf("%s is not in its generated form; run go test ./internal/wire -update", f)
		}
	}
}
