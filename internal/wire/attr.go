package wire

import "encoding/binary"

// Attrs iterates over a run of netlink attributes. It keeps a sticky error:
// once malformed input is seen, Next returns false and Err reports why.
// A final attribute without padding is accepted.
type Attrs struct {
	b    []byte
	typ  uint16
	data []byte
	err  error
}

// NewAttrs returns an iterator over b.
func NewAttrs(b []byte) Attrs { return Attrs{b: b} }

// Next advances to the next attribute.
func (a *Attrs) Next() bool {
	if len(a.b) == 0 || a.err != nil {
		return false
	}
	if len(a.b) < AttrHdrLen {
		a.err, a.b = ErrShort, nil
		return false
	}
	l := int(binary.NativeEndian.Uint16(a.b[0:2]))
	if l < AttrHdrLen || l > len(a.b) {
		a.err, a.b = ErrLength, nil
		return false
	}
	a.typ = binary.NativeEndian.Uint16(a.b[2:4])
	a.data = a.b[AttrHdrLen:l:l]
	if n := align4(l); n < len(a.b) {
		a.b = a.b[n:]
	} else {
		a.b = nil
	}
	return true
}

// Type returns the current attribute's type without the nested and
// byte-order flags.
func (a *Attrs) Type() uint16 { return a.typ & AttrTypeMask }

// Data returns the current attribute's value; it aliases the input.
func (a *Attrs) Data() []byte { return a.data }

// Err returns the error that stopped the iteration, if any.
func (a *Attrs) Err() error { return a.err }

// BE32 decodes a big-endian 32-bit value.
func BE32(b []byte) (uint32, bool) {
	if len(b) < 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(b), true
}

// BE16 decodes a big-endian 16-bit value.
func BE16(b []byte) (uint16, bool) {
	if len(b) < 2 {
		return 0, false
	}
	return binary.BigEndian.Uint16(b), true
}

// AppendAttr appends an attribute. Its nla_len is the unpadded length; the
// buffer is then padded to four bytes.
func AppendAttr(b []byte, typ uint16, data []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(AttrHdrLen+len(data)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	return pad(b)
}

// AppendBE32 appends an attribute holding a big-endian 32-bit value.
func AppendBE32(b []byte, typ uint16, v uint32) []byte {
	b = binary.NativeEndian.AppendUint16(b, AttrHdrLen+4)
	b = binary.NativeEndian.AppendUint16(b, typ)
	return binary.BigEndian.AppendUint32(b, v)
}

// AppendBE16 appends an attribute holding a big-endian 16-bit value.
func AppendBE16(b []byte, typ uint16, v uint16) []byte {
	b = binary.NativeEndian.AppendUint16(b, AttrHdrLen+2)
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, v)
	return pad(b)
}

// BeginNest appends the header of a nested attribute and returns the offset
// to pass to EndNest.
func BeginNest(b []byte, typ uint16) ([]byte, int) {
	start := len(b)
	b = binary.NativeEndian.AppendUint16(b, 0)
	b = binary.NativeEndian.AppendUint16(b, typ|AttrNested)
	return b, start
}

// EndNest writes the length of the nested attribute that starts at start.
func EndNest(b []byte, start int) []byte {
	binary.NativeEndian.PutUint16(b[start:], uint16(len(b)-start))
	return b
}
