package wire

import "encoding/binary"

// ErrorMsg is a decoded NLMSG_ERROR: an acknowledgement when Errno is 0,
// otherwise the kernel's error for the request described by Orig.
type ErrorMsg struct {
	Errno       uint32 // positive errno; 0 for an acknowledgement
	Orig        Header // header of the request that caused it
	OrigPayload []byte // the request's payload, when the kernel echoed it
	ExtMsg      []byte // extended ack text (NLMSGERR_ATTR_MSG), without NUL
	ExtOffset   uint32 // extended ack offset of the bad attribute, or 0
}

// ParseError decodes the payload of an NLMSG_ERROR message with flags hdrFlags.
func ParseError(hdrFlags uint16, payload []byte) (ErrorMsg, error) {
	if len(payload) < 4+HeaderLen {
		return ErrorMsg{}, ErrShort
	}
	var e ErrorMsg
	code := int32(binary.NativeEndian.Uint32(payload[0:4]))
	if code < 0 {
		e.Errno = uint32(-code)
	} else {
		e.Errno = uint32(code)
	}
	// The echoed header's length counts the original payload, which the
	// kernel may have left out (NLM_F_CAPPED); decode the header alone.
	h := payload[4 : 4+HeaderLen]
	e.Orig = Header{
		Len:   binary.NativeEndian.Uint32(h[0:4]),
		Type:  binary.NativeEndian.Uint16(h[4:6]),
		Flags: binary.NativeEndian.Uint16(h[6:8]),
		Seq:   binary.NativeEndian.Uint32(h[8:12]),
		PID:   binary.NativeEndian.Uint32(h[12:16]),
	}
	rest := payload[4+HeaderLen:]
	if hdrFlags&FlagCapped == 0 && e.Orig.Len >= HeaderLen {
		n := int(e.Orig.Len) - HeaderLen
		if n > len(rest) {
			n = len(rest)
		}
		e.OrigPayload = rest[:n:n]
		if next := align4(n); next < len(rest) {
			rest = rest[next:]
		} else {
			rest = nil
		}
	}
	if hdrFlags&FlagAckTLVs != 0 {
		a := NewAttrs(rest)
		for a.Next() {
			switch a.Type() {
			case ErrAttrMsg:
				msg := a.Data()
				for len(msg) > 0 && msg[len(msg)-1] == 0 {
					msg = msg[:len(msg)-1]
				}
				e.ExtMsg = msg
			case ErrAttrOffs:
				if v, ok := le32(a.Data()); ok {
					e.ExtOffset = v
				}
			}
		}
	}
	return e, nil
}

func le32(b []byte) (uint32, bool) {
	if len(b) < 4 {
		return 0, false
	}
	return binary.NativeEndian.Uint32(b), true
}
