package wire

// Fixture files: testdata/*/*.hex hold netlink bytes as annotated hex.
//
//	# Leading comment lines are the fixture's header: where the bytes came
//	# from. They are kept verbatim when a fixture is rewritten.
//	1c000000  # nlmsg_len 28
//	02030500  # nlmsg_type QUEUE|CONFIG, flags REQUEST|ACK
//
// Everything after a '#' is a comment; the rest of each line is hex digits
// (spaces allowed). The annotations are generated from the bytes by
// annotate, so a fixture can be re-annotated without touching its bytes.

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden fixtures in testdata/golden from the encoders, and re-annotate the others (keeping their bytes)")

// readFixture returns the header comment lines and the bytes of a fixture.
func readFixture(t testing.TB, path string) (header []string, data []byte) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	header, data, err = parseFixture(src)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return header, data
}

func parseFixture(src []byte) (header []string, data []byte, err error) {
	inHeader := true
	for i, line := range strings.Split(string(src), "\n") {
		code, _, _ := strings.Cut(line, "#")
		code = strings.Join(strings.Fields(code), "")
		if code == "" {
			if inHeader && strings.HasPrefix(line, "#") {
				header = append(header, line)
			}
			continue
		}
		inHeader = false
		b, err := hex.DecodeString(code)
		if err != nil {
			return nil, nil, fmt.Errorf("line %d: %v", i+1, err)
		}
		data = append(data, b...)
	}
	return header, data, nil
}

// formatFixture renders a fixture: the header, then the bytes annotated.
func formatFixture(header []string, data []byte) []byte {
	var b bytes.Buffer
	for _, h := range header {
		b.WriteString(h)
		b.WriteByte('\n')
	}
	for _, l := range annotate(data) {
		fmt.Fprintf(&b, "%-8x", l.b)
		if l.note != "" {
			b.WriteString("  # ")
			b.WriteString(l.note)
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func writeFixture(t testing.TB, path string, header []string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, formatFixture(header, data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkBytes fails t with a side-by-side hexdump when got != want.
func checkBytes(t testing.TB, name string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s: bytes differ (got %d bytes, want %d)\n%s", name, len(got), len(want), sideBySide(got, want))
	}
}

// sideBySide prints got and want four bytes per line, marking the lines
// that differ, with the annotation of want's bytes (or got's, past want's
// end).
func sideBySide(got, want []byte) string {
	notes := noteByOffset(want)
	gotNotes := noteByOffset(got)
	var b strings.Builder
	fmt.Fprintf(&b, "  %-6s %-10s %-10s %s\n", "offset", "got", "want", "(want's layout)")
	n := max(len(got), len(want))
	for off := 0; off < n; off += 4 {
		g, w := chunk(got, off), chunk(want, off)
		mark := " "
		if !bytes.Equal(g, w) {
			mark = "!"
		}
		note, ok := notes[off]
		if !ok && off >= len(want) {
			note = gotNotes[off]
		}
		fmt.Fprintf(&b, "%s %06x %-10x %-10x %s\n", mark, off, g, w, note)
	}
	return b.String()
}

func chunk(b []byte, off int) []byte {
	if off >= len(b) {
		return nil
	}
	return b[off:min(off+4, len(b))]
}

// noteByOffset maps the offsets of four-byte lines to the annotation of
// the first annotated field that starts on that line.
func noteByOffset(b []byte) map[int]string {
	m := make(map[int]string)
	off := 0
	for _, l := range annotate(b) {
		if _, ok := m[off&^3]; !ok && l.note != "" {
			m[off&^3] = l.note
		}
		off += len(l.b)
	}
	return m
}

// A dumpLine is a run of at most four bytes and what they mean.
type dumpLine struct {
	b    []byte
	note string
}

type dumper struct{ lines []dumpLine }

func (d *dumper) add(b []byte, depth int, format string, args ...any) {
	note := ""
	if format != "" {
		note = strings.Repeat("  ", depth) + fmt.Sprintf(format, args...)
	}
	d.lines = append(d.lines, dumpLine{b: b, note: note})
}

// raw adds b four bytes per line, the first line carrying the note.
func (d *dumper) raw(b []byte, depth int, format string, args ...any) {
	for i := 0; i < len(b); i += 4 {
		if i == 0 {
			d.add(b[i:min(i+4, len(b))], depth, format, args...)
		} else {
			d.add(b[i:min(i+4, len(b))], depth, "")
		}
	}
}

// annotate splits netlink bytes into lines of at most four bytes, each
// with what it is. It never fails: bytes it cannot place are shown raw.
func annotate(b []byte) []dumpLine {
	var d dumper
	for len(b) > 0 {
		if len(b) < HeaderLen {
			d.raw(b, 0, "%d trailing bytes, too short for an nlmsghdr", len(b))
			break
		}
		h := Header{
			Len:   binary.NativeEndian.Uint32(b[0:4]),
			Type:  binary.NativeEndian.Uint16(b[4:6]),
			Flags: binary.NativeEndian.Uint16(b[6:8]),
			Seq:   binary.NativeEndian.Uint32(b[8:12]),
			PID:   binary.NativeEndian.Uint32(b[12:16]),
		}
		d.add(b[0:4], 0, "nlmsg_len %d", h.Len)
		d.add(b[4:8], 0, "nlmsg_type %s, flags %s", msgTypeName(h.Type), msgFlagNames(h.Type, h.Flags))
		d.add(b[8:12], 0, "nlmsg_seq %d (%#x)", h.Seq, h.Seq)
		d.add(b[12:16], 0, "nlmsg_pid %d", h.PID)
		end := int(h.Len)
		if end < HeaderLen || end > len(b) {
			d.raw(b[HeaderLen:], 0, "%d bytes after a bad nlmsg_len", len(b)-HeaderLen)
			break
		}
		payload := b[HeaderLen:end]
		switch {
		case h.Type == NLMsgError:
			d.errorPayload(payload, h.Flags)
		case h.Type>>8 == NFNLSubsysQueue:
			d.nfqPayload(uint8(h.Type), payload)
		default:
			d.raw(payload, 1, "payload, %d bytes", len(payload))
		}
		next := min(align4(end), len(b))
		if next > end {
			d.add(b[end:next], 0, "message padding")
		}
		b = b[next:]
	}
	return d.lines
}

func (d *dumper) nfqPayload(typ uint8, p []byte) {
	if len(p) < GenMsgLen {
		d.raw(p, 1, "%d bytes, too short for nfgenmsg", len(p))
		return
	}
	d.add(p[:4], 1, "nfgenmsg family %d, version %d, res_id (queue) %d",
		p[0], p[1], binary.BigEndian.Uint16(p[2:4]))
	ns := nsPacket
	if typ == MsgConfig {
		ns = nsConfig
	}
	d.attrs(p[4:], ns, 1)
}

func (d *dumper) errorPayload(p []byte, flags uint16) {
	if len(p) < 4 {
		d.raw(p, 1, "%d bytes, too short for nlmsgerr", len(p))
		return
	}
	code := int32(binary.NativeEndian.Uint32(p))
	if code == 0 {
		d.add(p[:4], 1, "error 0 (acknowledgement)")
	} else {
		d.add(p[:4], 1, "error %d", code)
	}
	p = p[4:]
	if len(p) < HeaderLen {
		d.raw(p, 1, "%d bytes, too short for the echoed header", len(p))
		return
	}
	olen := binary.NativeEndian.Uint32(p)
	d.add(p[0:4], 1, "echoed nlmsg_len %d", olen)
	d.add(p[4:8], 1, "echoed nlmsg_type %s, flags %#x", msgTypeName(binary.NativeEndian.Uint16(p[4:])), binary.NativeEndian.Uint16(p[6:]))
	d.add(p[8:12], 1, "echoed nlmsg_seq %d", binary.NativeEndian.Uint32(p[8:]))
	d.add(p[12:16], 1, "echoed nlmsg_pid %d", binary.NativeEndian.Uint32(p[12:]))
	p = p[HeaderLen:]
	if flags&FlagCapped == 0 && olen > HeaderLen {
		n := min(int(olen)-HeaderLen, len(p))
		d.raw(p[:n], 1, "echoed payload, %d bytes", n)
		next := min(align4(n), len(p))
		if next > n {
			d.add(p[n:next], 1, "padding")
		}
		p = p[next:]
	}
	if flags&FlagAckTLVs != 0 {
		d.attrs(p, nsErr, 1)
	} else if len(p) > 0 {
		d.raw(p, 1, "%d trailing bytes", len(p))
	}
}

// Attribute name spaces.
type attrNS int

const (
	nsPacket attrNS = iota // NFQA_*
	nsConfig               // NFQA_CFG_*
	nsCT                   // CTA_*
	nsVLAN                 // NFQA_VLAN_*
	nsErr                  // NLMSGERR_ATTR_*
	nsOther
)

var attrNames = map[attrNS]map[uint16]string{
	nsPacket: {
		AttrPacketHdr: "PACKET_HDR", AttrVerdictHdr: "VERDICT_HDR", AttrMark: "MARK",
		AttrTimestamp: "TIMESTAMP", AttrIfIndexIn: "IFINDEX_INDEV", AttrIfIndexOut: "IFINDEX_OUTDEV",
		AttrIfIndexPhysIn: "IFINDEX_PHYSINDEV", AttrIfIndexPhysOut: "IFINDEX_PHYSOUTDEV",
		AttrHwAddr: "HWADDR", AttrPayload: "PAYLOAD", AttrCT: "CT", AttrCTInfo: "CT_INFO",
		AttrCapLen: "CAP_LEN", AttrSkbInfo: "SKB_INFO", AttrExp: "EXP", AttrUID: "UID",
		AttrGID: "GID", AttrSecCtx: "SECCTX", AttrVLAN: "VLAN", AttrL2Hdr: "L2HDR",
		AttrPriority: "PRIORITY", AttrCgroupClassID: "CGROUP_CLASSID",
	},
	nsConfig: {CfgAttrCmd: "CFG_CMD", CfgAttrParams: "CFG_PARAMS", CfgAttrQueueMax: "CFG_QUEUE_MAXLEN",
		CfgAttrMask: "CFG_MASK", CfgAttrFlags: "CFG_FLAGS"},
	nsCT:   {CTAMark: "CTA_MARK", CTALabels: "CTA_LABELS", CTALabelsMask: "CTA_LABELS_MASK"},
	nsVLAN: {VLANAttrProto: "VLAN_PROTO", VLANAttrTCI: "VLAN_TCI"},
	nsErr:  {ErrAttrMsg: "NLMSGERR_ATTR_MSG", ErrAttrOffs: "NLMSGERR_ATTR_OFFS"},
}

func attrName(ns attrNS, typ uint16) string {
	name, ok := attrNames[ns][typ&AttrTypeMask]
	if !ok {
		name = fmt.Sprintf("type %d", typ&AttrTypeMask)
	}
	if typ&AttrNested != 0 {
		name += "|NESTED"
	}
	if typ&AttrNetOrder != 0 {
		name += "|NET_BYTEORDER"
	}
	return name
}

// childNS returns the name space of a nested attribute's members.
func childNS(ns attrNS, typ uint16) (attrNS, bool) {
	switch {
	case ns == nsPacket && typ&AttrTypeMask == AttrCT:
		return nsCT, true
	case ns == nsPacket && typ&AttrTypeMask == AttrVLAN:
		return nsVLAN, true
	case typ&AttrNested != 0:
		return nsOther, true
	}
	return 0, false
}

func (d *dumper) attrs(b []byte, ns attrNS, depth int) {
	for len(b) > 0 {
		if len(b) < AttrHdrLen {
			d.raw(b, depth, "%d trailing bytes, too short for an attribute", len(b))
			return
		}
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		typ := binary.NativeEndian.Uint16(b[2:4])
		d.add(b[:4], depth, "nla_len %d, nla_type %s", l, attrName(ns, typ))
		if l < AttrHdrLen || l > len(b) {
			d.raw(b[4:], depth+1, "%d bytes after a bad nla_len", len(b)-4)
			return
		}
		val := b[AttrHdrLen:l]
		if child, ok := childNS(ns, typ); ok {
			d.attrs(val, child, depth+1)
		} else {
			d.value(val, ns, typ&AttrTypeMask, depth+1)
		}
		next := min(align4(l), len(b))
		if next > l {
			d.add(b[l:next], depth, "attribute padding")
		}
		b = b[next:]
	}
}

func (d *dumper) value(v []byte, ns attrNS, typ uint16, depth int) {
	be32 := func(format string) {
		if len(v) == 4 {
			x := binary.BigEndian.Uint32(v)
			d.add(v, depth, format, x, x)
			return
		}
		d.raw(v, depth, "%d bytes", len(v))
	}
	switch {
	case ns == nsConfig && typ == CfgAttrCmd && len(v) == 4:
		d.add(v, depth, "command %d (%s), pad, pf %d", v[0], cmdName(v[0]), binary.BigEndian.Uint16(v[2:4]))
	case ns == nsConfig && typ == CfgAttrParams && len(v) == 5:
		d.add(v[:4], depth, "copy_range %d", binary.BigEndian.Uint32(v))
		d.add(v[4:], depth, "copy_mode %d", v[4])
	case ns == nsConfig && typ == CfgAttrQueueMax:
		be32("queue_maxlen %d (%#x)")
	case ns == nsConfig && (typ == CfgAttrMask || typ == CfgAttrFlags):
		be32("%d (%#x)")
	case ns == nsPacket && typ == AttrVerdictHdr && len(v) == 8:
		code := binary.BigEndian.Uint32(v)
		d.add(v[:4], depth, "verdict %#08x (%s)", code, verdictName(code))
		d.add(v[4:], depth, "id %d", binary.BigEndian.Uint32(v[4:]))
	case ns == nsPacket && typ == AttrPacketHdr && len(v) == 7:
		d.add(v[:4], depth, "packet_id %d", binary.BigEndian.Uint32(v))
		d.add(v[4:], depth, "hw_protocol %#04x, hook %d", binary.BigEndian.Uint16(v[4:6]), v[6])
	case ns == nsPacket && typ == AttrTimestamp && len(v) == 16:
		d.raw(v[:8], depth, "sec %d", binary.BigEndian.Uint64(v))
		d.raw(v[8:], depth, "usec %d", binary.BigEndian.Uint64(v[8:]))
	case ns == nsPacket && typ == AttrHwAddr && len(v) >= 4:
		d.add(v[:4], depth, "hw_addrlen %d, pad", binary.BigEndian.Uint16(v))
		d.raw(v[4:], depth, "hw_addr")
	case ns == nsPacket && (typ == AttrPayload || typ == AttrL2Hdr || typ == AttrSecCtx || typ == AttrExp):
		d.raw(v, depth, "%d bytes", len(v))
	case ns == nsPacket || ns == nsCT && typ == CTAMark:
		be32("%d (%#x)")
	case ns == nsVLAN && len(v) == 2:
		d.add(v, depth, "%#04x", binary.BigEndian.Uint16(v))
	case ns == nsErr && typ == ErrAttrMsg:
		d.raw(v, depth, "%q", strings.TrimRight(string(v), "\x00"))
	case ns == nsErr && typ == ErrAttrOffs && len(v) == 4:
		d.add(v, depth, "offset %d", binary.NativeEndian.Uint32(v))
	default:
		d.raw(v, depth, "%d bytes", len(v))
	}
}

func msgTypeName(t uint16) string {
	switch t {
	case NLMsgNoop:
		return "NOOP"
	case NLMsgError:
		return "ERROR"
	case NLMsgDone:
		return "DONE"
	case NLMsgOverrun:
		return "OVERRUN"
	}
	if t>>8 == NFNLSubsysQueue {
		switch uint8(t) {
		case MsgPacket:
			return "QUEUE|PACKET"
		case MsgVerdict:
			return "QUEUE|VERDICT"
		case MsgConfig:
			return "QUEUE|CONFIG"
		case MsgVerdictBatch:
			return "QUEUE|VERDICT_BATCH"
		}
	}
	return fmt.Sprintf("%#04x", t)
}

func msgFlagNames(typ, f uint16) string {
	var s []string
	for _, fl := range []struct {
		bit  uint16
		name string
	}{{FlagRequest, "REQUEST"}, {FlagMulti, "MULTI"}, {FlagAck, "ACK"}, {8, "ECHO"}} {
		if f&fl.bit != 0 {
			s = append(s, fl.name)
			f &^= fl.bit
		}
	}
	if typ == NLMsgError {
		if f&FlagCapped != 0 {
			s, f = append(s, "CAPPED"), f&^FlagCapped
		}
		if f&FlagAckTLVs != 0 {
			s, f = append(s, "ACK_TLVS"), f&^FlagAckTLVs
		}
	}
	if f != 0 {
		s = append(s, fmt.Sprintf("%#x", f))
	}
	if len(s) == 0 {
		return "0"
	}
	return strings.Join(s, "|")
}

func cmdName(c uint8) string {
	switch c {
	case CmdNone:
		return "NONE"
	case CmdBind:
		return "BIND"
	case CmdUnbind:
		return "UNBIND"
	}
	return "?"
}

func verdictName(code uint32) string {
	names := []string{"DROP", "ACCEPT", "STOLEN", "QUEUE", "REPEAT", "STOP"}
	k := code & VerdictMask
	s := fmt.Sprintf("verdict %d", k)
	if int(k) < len(names) {
		s = names[k]
	}
	if q := code >> VerdictQBits; q != 0 || k == NFQueue {
		s += fmt.Sprintf(" num %d", q)
	}
	if code&VerdictFlagBypass != 0 {
		s += "|BYPASS"
	}
	return s
}

func TestParseFixture(t *testing.T) {
	src := "# header one\n#\n# header two\n1c00 0000  # a note # with hash\n\n# a comment between\nab\n"
	header, data, err := parseFixture([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"# header one", "#", "# header two"}; strings.Join(header, "\n") != strings.Join(want, "\n") {
		t.Errorf("header %q, want %q", header, want)
	}
	checkBytes(t, "data", data, []byte{0x1c, 0, 0, 0, 0xab})
	if _, _, err := parseFixture([]byte("zz\n")); err == nil {
		t.Error("bad hex accepted")
	}
	// A formatted fixture parses back to the same header and bytes, for
	// any input (annotate never fails).
	for _, in := range [][]byte{nil, {1, 2, 3}, bytes.Repeat([]byte{0xff}, 40), {20, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 1, 9}} {
		h2, d2, err := parseFixture(formatFixture([]string{"# h"}, in))
		if err != nil || len(h2) != 1 || !bytes.Equal(d2, in) {
			t.Errorf("format/parse of % x: header %q, bytes % x, err %v", in, h2, d2, err)
		}
	}
}
