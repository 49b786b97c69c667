package wire

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"testing"
)

// errPayload builds an NLMSG_ERROR payload by hand: the error code, the
// echoed header (with nlmsg_len origLen) and the rest.
func errPayload(code int32, origLen uint32, origType uint16, origSeq uint32, rest ...[]byte) []byte {
	b := binary.NativeEndian.AppendUint32(nil, uint32(code))
	b = binary.NativeEndian.AppendUint32(b, origLen)
	b = binary.NativeEndian.AppendUint16(b, origType)
	b = binary.NativeEndian.AppendUint16(b, FlagRequest|FlagAck)
	b = binary.NativeEndian.AppendUint32(b, origSeq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	return append(b, bytes.Join(rest, nil)...)
}

func le32attr(typ uint16, v uint32) []byte {
	return attr(typ, 0, binary.NativeEndian.AppendUint32(nil, v))
}

func TestParseError(t *testing.T) {
	echoed := []byte{0, 0, 0, 3, 12, 0, 2, 0, 0, 0, 0, 1, 0, 0, 0, 9} // nfgenmsg + verdict hdr
	msgTLV := padded(attr(ErrAttrMsg, 0, []byte("bad attr\x00")))
	offTLV := le32attr(ErrAttrOffs, 20)
	vt := QueueType(MsgVerdict)
	tests := []struct {
		name    string
		flags   uint16
		payload []byte
		want    ErrorMsg
	}{
		{
			name:    "ack",
			flags:   FlagCapped,
			payload: errPayload(0, 36, QueueType(MsgConfig), 7),
			want:    ErrorMsg{Orig: Header{Len: 36, Type: QueueType(MsgConfig), Flags: 5, Seq: 7}},
		},
		{
			name:    "error with echoed request",
			payload: errPayload(-2, 32, vt, 9, echoed),
			want:    ErrorMsg{Errno: 2, Orig: Header{Len: 32, Type: vt, Flags: 5, Seq: 9}, OrigPayload: echoed},
		},
		{
			name:    "capped error",
			flags:   FlagCapped,
			payload: errPayload(-2, 32, vt, 9),
			want:    ErrorMsg{Errno: 2, Orig: Header{Len: 32, Type: vt, Flags: 5, Seq: 9}},
		},
		{
			name:    "echo shorter than the echoed nlmsg_len",
			payload: errPayload(-2, 1000, vt, 9, echoed),
			want:    ErrorMsg{Errno: 2, Orig: Header{Len: 1000, Type: vt, Flags: 5, Seq: 9}, OrigPayload: echoed},
		},
		{
			name:    "echoed nlmsg_len below a header",
			payload: errPayload(-22, 3, vt, 9, echoed),
			want:    ErrorMsg{Errno: 22, Orig: Header{Len: 3, Type: vt, Flags: 5, Seq: 9}},
		},
		{
			name:    "extended ack after an unpadded echo",
			flags:   FlagAckTLVs,
			payload: errPayload(-22, 16+5, vt, 9, []byte{1, 2, 3, 4, 5, 0, 0, 0}, msgTLV, offTLV),
			want: ErrorMsg{Errno: 22, Orig: Header{Len: 21, Type: vt, Flags: 5, Seq: 9},
				OrigPayload: []byte{1, 2, 3, 4, 5}, ExtMsg: []byte("bad attr"), ExtOffset: 20},
		},
		{
			name:    "capped extended ack",
			flags:   FlagCapped | FlagAckTLVs,
			payload: errPayload(-95, 32, vt, 9, offTLV, msgTLV),
			want:    ErrorMsg{Errno: 95, Orig: Header{Len: 32, Type: vt, Flags: 5, Seq: 9}, ExtMsg: []byte("bad attr"), ExtOffset: 20},
		},
		{
			name:    "TLVs without the flag are ignored",
			flags:   FlagCapped,
			payload: errPayload(-95, 32, vt, 9, msgTLV),
			want:    ErrorMsg{Errno: 95, Orig: Header{Len: 32, Type: vt, Flags: 5, Seq: 9}},
		},
		{
			name:    "malformed TLVs are skipped",
			flags:   FlagCapped | FlagAckTLVs,
			payload: errPayload(-95, 32, vt, 9, offTLV, []byte{9, 0, 1, 0, 0xff}),
			want:    ErrorMsg{Errno: 95, Orig: Header{Len: 32, Type: vt, Flags: 5, Seq: 9}, ExtOffset: 20},
		},
		{
			name:    "truncated TLV",
			flags:   FlagCapped | FlagAckTLVs,
			payload: errPayload(-95, 32, vt, 9, le32attr(ErrAttrOffs, 4)[:6]),
			want:    ErrorMsg{Errno: 95, Orig: Header{Len: 32, Type: vt, Flags: 5, Seq: 9}},
		},
		{
			name:    "short offset TLV and a message of NULs",
			flags:   FlagCapped | FlagAckTLVs,
			payload: errPayload(-95, 32, vt, 9, padded(attr(ErrAttrOffs, 0, []byte{1, 2})), attr(ErrAttrMsg, 0, []byte{0, 0})),
			want:    ErrorMsg{Errno: 95, Orig: Header{Len: 32, Type: vt, Flags: 5, Seq: 9}, ExtMsg: []byte{}},
		},
		{
			name:    "positive code",
			flags:   FlagCapped,
			payload: errPayload(5, 16, vt, 1),
			want:    ErrorMsg{Errno: 5, Orig: Header{Len: 16, Type: vt, Flags: 5, Seq: 1}},
		},
		{
			name:    "most negative code",
			flags:   FlagCapped,
			payload: errPayload(-1<<31, 16, vt, 1),
			want:    ErrorMsg{Errno: 1 << 31, Orig: Header{Len: 16, Type: vt, Flags: 5, Seq: 1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseError(tt.flags, tt.payload)
			if err != nil {
				t.Fatal(err)
			}
			equalErrorMsg(t, got, tt.want)
		})
	}
	for n := range 20 {
		if e, err := ParseError(0, make([]byte, n)); err != ErrShort || e.Errno != 0 || e.OrigPayload != nil {
			t.Errorf("%d bytes: %+v, %v", n, e, err)
		}
	}
}

func equalErrorMsg(t *testing.T, got, want ErrorMsg) {
	t.Helper()
	if got.Errno != want.Errno || got.Orig != want.Orig || got.ExtOffset != want.ExtOffset ||
		!bytes.Equal(got.OrigPayload, want.OrigPayload) || (got.OrigPayload == nil) != (want.OrigPayload == nil) ||
		!bytes.Equal(got.ExtMsg, want.ExtMsg) || (got.ExtMsg == nil) != (want.ExtMsg == nil) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

// TestParseKernelErrors decodes the acknowledgement and errors captured from
// the kernel (testdata/kernel/{ack,error}-*.hex).
func TestParseKernelErrors(t *testing.T) {
	requireLittleEndian(t)
	vt, ct := QueueType(MsgVerdict), QueueType(MsgConfig)
	tests := []struct {
		file        string
		flags       uint16
		want        ErrorMsg
		payloadLen  int
		wantExtText string
	}{
		{file: "ack-bind", flags: FlagCapped,
			want: ErrorMsg{Orig: Header{Len: 56, Type: ct, Flags: 5, Seq: 7}}},
		{file: "error-verdict-enoent", flags: 0, payloadLen: 24,
			want: ErrorMsg{Errno: 2, Orig: Header{Len: 40, Type: vt, Flags: 5, Seq: 999}}},
		{file: "error-verdict-enoent-capped", flags: FlagCapped,
			want: ErrorMsg{Errno: 2, Orig: Header{Len: 32, Type: vt, Flags: 5, Seq: 999}}},
		{file: "error-extack-policy", flags: FlagAckTLVs, payloadLen: 12, wantExtText: "Attribute failed policy validation",
			want: ErrorMsg{Errno: 34, Orig: Header{Len: 28, Type: ct, Flags: 5, Seq: 9}, ExtOffset: 20}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, dgram := readFixture(t, filepath.Join("testdata", "kernel", tt.file+".hex"))
			var it Messages
			it.Reset(dgram)
			var m Message
			if !it.Next(&m) || m.Header.Type != NLMsgError || it.Remaining() {
				t.Fatalf("not one NLMSG_ERROR: %v", it.Err())
			}
			if m.Header.Flags != tt.flags || m.Header.Seq != tt.want.Orig.Seq {
				t.Errorf("header %+v", m.Header)
			}
			e, err := ParseError(m.Header.Flags, m.Payload)
			if err != nil {
				t.Fatal(err)
			}
			if len(e.OrigPayload) != tt.payloadLen {
				t.Errorf("echoed payload %d bytes, want %d", len(e.OrigPayload), tt.payloadLen)
			}
			if tt.payloadLen > 0 {
				// The echo is the request's payload: nfgenmsg for queue 3 first.
				if g, _, err := SplitGenMsg(e.OrigPayload); err != nil || g.ResID != 3 {
					t.Errorf("echoed nfgenmsg %+v, %v", g, err)
				}
			}
			tt.want.OrigPayload, tt.want.ExtMsg = e.OrigPayload, e.ExtMsg
			equalErrorMsg(t, e, tt.want)
			if string(e.ExtMsg) != tt.wantExtText {
				t.Errorf("ExtMsg %q, want %q", e.ExtMsg, tt.wantExtText)
			}
		})
	}
}
