// Package wire encodes and decodes the netlink messages of nfnetlink_queue.
//
// It performs no I/O, has no build tags and never allocates on the paths used
// per packet: decoders return slices that alias the input, encoders append to
// a caller's buffer. Every decoder bounds-checks every length and reports
// malformed input as an error; none panics on any input.
//
// Netlink headers are in host byte order; nfnetlink payloads (the queue number
// in nfgenmsg and every NFQA attribute value) are big-endian.
package wire

import (
	"encoding/binary"
	"errors"
)

// Errors returned by the decoders.
var (
	ErrShort  = errors.New("message too short")
	ErrLength = errors.New("bad length field")
)

// Header is a decoded struct nlmsghdr.
type Header struct {
	Len   uint32
	Type  uint16
	Flags uint16
	Seq   uint32
	PID   uint32
}

// Message is one netlink message from a datagram: its header and payload.
// Payload aliases the datagram.
type Message struct {
	Header  Header
	Payload []byte
}

// IsQueue reports whether the message belongs to the nfnetlink_queue
// subsystem, and returns its NFQNL_MSG_* type.
func (m *Message) IsQueue() (typ uint8, ok bool) {
	if m.Header.Type>>8 != NFNLSubsysQueue {
		return 0, false
	}
	return uint8(m.Header.Type), true
}

// Messages iterates over the netlink messages in one datagram. The zero
// value is empty; Reset starts a new datagram.
type Messages struct {
	b   []byte
	err error
}

// Reset sets the datagram to iterate over.
func (it *Messages) Reset(b []byte) { it.b, it.err = b, nil }

// Remaining reports whether unread bytes are left.
func (it *Messages) Remaining() bool { return len(it.b) > 0 && it.err == nil }

// Err returns the error that stopped the iteration, if any.
func (it *Messages) Err() error { return it.err }

// Next decodes the next message into m. It returns false at the end of the
// datagram or on malformed input (then Err is set and the rest is skipped).
// A final message whose length is not a multiple of four is accepted.
func (it *Messages) Next(m *Message) bool {
	if len(it.b) == 0 || it.err != nil {
		return false
	}
	if len(it.b) < HeaderLen {
		it.fail(ErrShort)
		return false
	}
	h := Header{
		Len:   binary.NativeEndian.Uint32(it.b[0:4]),
		Type:  binary.NativeEndian.Uint16(it.b[4:6]),
		Flags: binary.NativeEndian.Uint16(it.b[6:8]),
		Seq:   binary.NativeEndian.Uint32(it.b[8:12]),
		PID:   binary.NativeEndian.Uint32(it.b[12:16]),
	}
	if h.Len < HeaderLen || uint64(h.Len) > uint64(len(it.b)) {
		it.fail(ErrLength)
		return false
	}
	m.Header = h
	m.Payload = it.b[HeaderLen:h.Len:h.Len]
	next := align4(int(h.Len))
	if next >= len(it.b) {
		it.b = it.b[len(it.b):]
	} else {
		it.b = it.b[next:]
	}
	return true
}

func (it *Messages) fail(err error) {
	it.err = err
	it.b = nil
}

func align4(n int) int { return (n + 3) &^ 3 }

// GenMsg is a decoded struct nfgenmsg.
type GenMsg struct {
	Family  uint8
	Version uint8
	ResID   uint16 // the queue number
}

// SplitGenMsg decodes the nfgenmsg at the start of an nfnetlink payload and
// returns it with the attribute bytes that follow.
func SplitGenMsg(payload []byte) (GenMsg, []byte, error) {
	if len(payload) < GenMsgLen {
		return GenMsg{}, nil, ErrShort
	}
	g := GenMsg{
		Family:  payload[0],
		Version: payload[1],
		ResID:   binary.BigEndian.Uint16(payload[2:4]),
	}
	return g, payload[GenMsgLen:], nil
}

// AppendHeader appends an nlmsghdr with a zero length followed by an
// nfgenmsg, and returns the extended buffer and the offset of the header.
// Call Finish with that offset once the attributes are appended.
func AppendHeader(b []byte, typ, flags uint16, seq uint32, family uint8, resID uint16) ([]byte, int) {
	start := len(b)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = binary.NativeEndian.AppendUint16(b, flags)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = append(b, family, NFNetlinkV0)
	b = binary.BigEndian.AppendUint16(b, resID)
	return b, start
}

// Finish writes the length of the message that starts at offset start and
// pads the buffer to a four-byte boundary so another message may follow.
func Finish(b []byte, start int) []byte {
	binary.NativeEndian.PutUint32(b[start:], uint32(len(b)-start))
	return pad(b)
}

// QueueType returns the nlmsg_type of an nfnetlink_queue message.
func QueueType(msg uint8) uint16 { return NFNLSubsysQueue<<8 | uint16(msg) }

func pad(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}
