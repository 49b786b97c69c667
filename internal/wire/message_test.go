package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// msg builds a netlink message by hand: header with the given nlmsg_len
// (0 = the real length, unpadded), then payload.
func msg(typ, flags uint16, seq uint32, length uint32, payload []byte) []byte {
	if length == 0 {
		length = uint32(HeaderLen + len(payload))
	}
	b := binary.NativeEndian.AppendUint32(nil, length)
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = binary.NativeEndian.AppendUint16(b, flags)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	return append(b, payload...)
}

// withLen overwrites the nlmsg_len of the message at the start of b.
func withLen(b []byte, n uint32) []byte {
	binary.NativeEndian.PutUint32(b, n)
	return b
}

func padded(b []byte) []byte { return pad(bytes.Clone(b)) }

type gotMsg struct {
	typ     uint16
	seq     uint32
	payload []byte
}

func collect(b []byte) ([]gotMsg, error) {
	var it Messages
	it.Reset(b)
	var out []gotMsg
	var m Message
	for it.Next(&m) {
		out = append(out, gotMsg{m.Header.Type, m.Header.Seq, m.Payload})
	}
	return out, it.Err()
}

func TestMessages(t *testing.T) {
	one := msg(QueueType(MsgPacket), 0, 1, 0, []byte{2, 0, 0, 3})
	odd := msg(QueueType(MsgPacket), 0, 2, 0, []byte{1, 2, 3, 4, 5}) // nlmsg_len 21
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	tests := []struct {
		name    string
		in      []byte
		seqs    []uint32
		lastLen int // payload length of the last message
		err     error
	}{
		{name: "empty", in: nil},
		{name: "one", in: one, seqs: []uint32{1}, lastLen: 4},
		{name: "two", in: cat(one, one), seqs: []uint32{1, 1}, lastLen: 4},
		{name: "unpadded final message", in: cat(one, odd), seqs: []uint32{1, 2}, lastLen: 5},
		{name: "padded final message", in: cat(one, padded(odd)), seqs: []uint32{1, 2}, lastLen: 5},
		{name: "odd message then another", in: cat(padded(odd), one), seqs: []uint32{2, 1}, lastLen: 4},
		{name: "header only", in: msg(NLMsgNoop, 0, 9, 0, nil), seqs: []uint32{9}, lastLen: 0},
		{name: "short header", in: one[:15], err: ErrShort},
		{name: "short trailer", in: cat(one, []byte{1, 2, 3, 4, 5}), seqs: []uint32{1}, lastLen: 4, err: ErrShort},
		{name: "nlmsg_len below header", in: msg(1, 0, 1, 15, []byte{0}), err: ErrLength},
		{name: "nlmsg_len zero", in: withLen(msg(1, 0, 1, 0, []byte{0, 0, 0, 0}), 0), err: ErrLength},
		{name: "nlmsg_len past end", in: msg(1, 0, 1, 21, []byte{0, 0, 0, 0}), err: ErrLength},
		{name: "nlmsg_len huge", in: msg(1, 0, 1, 0xffffffff, []byte{0, 0, 0, 0}), err: ErrLength},
		{name: "bad length after a good message", in: cat(one, msg(1, 0, 5, 8, []byte{0, 0, 0, 0})), seqs: []uint32{1}, lastLen: 4, err: ErrLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := collect(tt.in)
			if !errors.Is(err, tt.err) {
				t.Errorf("err %v, want %v", err, tt.err)
			}
			if len(got) != len(tt.seqs) {
				t.Fatalf("%d messages, want %d", len(got), len(tt.seqs))
			}
			for i, m := range got {
				if m.seq != tt.seqs[i] {
					t.Errorf("message %d: seq %d, want %d", i, m.seq, tt.seqs[i])
				}
			}
			if n := len(got); n > 0 && len(got[n-1].payload) != tt.lastLen {
				t.Errorf("last payload %d bytes, want %d", len(got[n-1].payload), tt.lastLen)
			}
		})
	}
}

func TestMessagesState(t *testing.T) {
	var it Messages
	var m Message
	if it.Next(&m) || it.Remaining() || it.Err() != nil {
		t.Fatal("zero Messages is not empty")
	}
	two := append(padded(msg(1, 0, 1, 0, []byte{1})), msg(1, 0, 2, 0, nil)...)
	it.Reset(two)
	if !it.Remaining() || !it.Next(&m) || !it.Remaining() || !it.Next(&m) || it.Remaining() || it.Next(&m) {
		t.Fatal("Remaining does not track the messages")
	}
	// A sticky error, cleared by Reset.
	it.Reset([]byte{1, 2, 3})
	if it.Next(&m) || it.Err() != ErrShort || it.Remaining() || it.Next(&m) {
		t.Fatal("error not sticky")
	}
	it.Reset(two)
	if it.Err() != nil || !it.Next(&m) || m.Header.Seq != 1 {
		t.Fatal("Reset did not clear the error")
	}
	// The payload aliases the datagram and is capped at the message.
	it.Reset(two)
	it.Next(&m)
	if &m.Payload[0] != &two[HeaderLen] || len(m.Payload) != 1 {
		t.Errorf("payload does not alias the datagram")
	}
}

func TestHeaderDecode(t *testing.T) {
	b := msg(0x1234, 0x5678, 0x9abcdef0, 0, nil)
	binary.NativeEndian.PutUint32(b[12:], 0x0badf00d)
	var it Messages
	it.Reset(b)
	var m Message
	if !it.Next(&m) {
		t.Fatal(it.Err())
	}
	want := Header{Len: 16, Type: 0x1234, Flags: 0x5678, Seq: 0x9abcdef0, PID: 0x0badf00d}
	if m.Header != want {
		t.Errorf("header %+v, want %+v", m.Header, want)
	}
}

func TestIsQueue(t *testing.T) {
	for _, tt := range []struct {
		typ  uint16
		msg  uint8
		isQ  bool
		name string
	}{
		{QueueType(MsgPacket), MsgPacket, true, "packet"},
		{QueueType(MsgVerdictBatch), MsgVerdictBatch, true, "batch"},
		{0x0300 | 0xff, 0xff, true, "unknown queue message"},
		{NLMsgError, 0, false, "error"},
		{0x0100, 0, false, "ctnetlink"},
		{0x0400, 0, false, "ulog"},
	} {
		m := Message{Header: Header{Type: tt.typ}}
		typ, ok := m.IsQueue()
		if ok != tt.isQ || typ != tt.msg {
			t.Errorf("%s: IsQueue() = %d, %v; want %d, %v", tt.name, typ, ok, tt.msg, tt.isQ)
		}
	}
	if QueueType(MsgConfig) != 0x0302 {
		t.Errorf("QueueType(CONFIG) = %#x", QueueType(MsgConfig))
	}
}

func TestSplitGenMsg(t *testing.T) {
	g, rest, err := SplitGenMsg([]byte{10, 0, 0x01, 0x02, 0xaa})
	if err != nil || g != (GenMsg{Family: 10, Version: 0, ResID: 258}) || !bytes.Equal(rest, []byte{0xaa}) {
		t.Errorf("SplitGenMsg = %+v, % x, %v", g, rest, err)
	}
	g, rest, err = SplitGenMsg([]byte{2, 0, 0, 1})
	if err != nil || g.ResID != 1 || len(rest) != 0 {
		t.Errorf("SplitGenMsg(exact) = %+v, % x, %v", g, rest, err)
	}
	for n := range 4 {
		if g, rest, err := SplitGenMsg(make([]byte, n)); err != ErrShort || g != (GenMsg{}) || rest != nil {
			t.Errorf("SplitGenMsg(%d bytes) = %+v, %v, %v", n, g, rest, err)
		}
	}
}

func TestAppendHeaderFinish(t *testing.T) {
	requireLittleEndian(t)
	b, start := AppendHeader([]byte{0xee, 0xee, 0xee, 0xee}, 0x0301, FlagRequest|FlagAck, 7, ProtoIPv6, 0xfffe)
	if start != 4 {
		t.Errorf("start %d", start)
	}
	b = append(b, 1, 2, 3) // an unpadded tail
	b = Finish(b, start)
	checkBytes(t, "header", b, []byte{
		0xee, 0xee, 0xee, 0xee, // what was there
		0x17, 0, 0, 0, // nlmsg_len 23: the padding is not counted by Finish
		0x01, 0x03, 0x05, 0x00,
		7, 0, 0, 0,
		0, 0, 0, 0,
		10, 0, 0xff, 0xfe,
		1, 2, 3, 0, // padded to four
	})
}
