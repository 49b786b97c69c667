package main

import (
	"bytes"
	"encoding/binary"
)

const (
	protoTCP = 6
	protoUDP = 17
)

// transport locates the transport header of an IPv4 or IPv6 packet: its
// protocol, offset, and the pseudo-header addresses. ok is false for
// fragments, IPv6 extension headers and short packets.
func transport(pkt []byte) (proto uint8, off int, src, dst []byte, ok bool) {
	if len(pkt) < 1 {
		return 0, 0, nil, nil, false
	}
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < 20 {
			return 0, 0, nil, nil, false
		}
		ihl := int(pkt[0]&0x0f) * 4
		frag := binary.BigEndian.Uint16(pkt[6:8])
		if ihl < 20 || len(pkt) < ihl || frag&0x3fff != 0 {
			return 0, 0, nil, nil, false
		}
		return pkt[9], ihl, pkt[12:16], pkt[16:20], true
	case 6:
		if len(pkt) < 40 {
			return 0, 0, nil, nil, false
		}
		return pkt[6], 40, pkt[8:24], pkt[24:40], true
	}
	return 0, 0, nil, nil, false
}

// rewritePayload returns a copy of the IP packet pkt in which every
// occurrence of old in the TCP or UDP payload is replaced by repl (of the
// same length, so that TCP sequence numbers stay valid), with the transport
// checksum computed afresh. It returns nil when pkt is not TCP or UDP or
// does not contain old.
func rewritePayload(pkt, old, repl []byte) []byte {
	if len(old) != len(repl) || len(old) == 0 {
		return nil
	}
	proto, off, _, _, ok := transport(pkt)
	if !ok {
		return nil
	}
	var hdr int
	switch proto {
	case protoTCP:
		if len(pkt) < off+20 {
			return nil
		}
		hdr = int(pkt[off+12]>>4) * 4
	case protoUDP:
		hdr = 8
	default:
		return nil
	}
	if hdr < 8 || len(pkt) < off+hdr || !bytes.Contains(pkt[off+hdr:], old) {
		return nil
	}
	out := make([]byte, len(pkt))
	copy(out, pkt[:off+hdr])
	copy(out[off+hdr:], bytes.ReplaceAll(pkt[off+hdr:], old, repl))
	fixChecksum(out)
	return out
}

// fixChecksum computes the TCP or UDP checksum of the IP packet pkt in
// place. It ignores other packets.
func fixChecksum(pkt []byte) {
	proto, off, src, dst, ok := transport(pkt)
	if !ok {
		return
	}
	var at int
	switch proto {
	case protoTCP:
		at = off + 16
	case protoUDP:
		at = off + 6
	default:
		return
	}
	if len(pkt) < at+2 {
		return
	}
	pkt[at], pkt[at+1] = 0, 0
	sum := l4Checksum(proto, src, dst, pkt[off:])
	if proto == protoUDP && sum == 0 {
		sum = 0xffff
	}
	binary.BigEndian.PutUint16(pkt[at:], sum)
}

// l4Checksum returns the Internet checksum of a transport segment with its
// pseudo-header.
func l4Checksum(proto uint8, src, dst, seg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for len(b) >= 2 {
			sum += uint32(b[0])<<8 | uint32(b[1])
			b = b[2:]
		}
		if len(b) == 1 {
			sum += uint32(b[0]) << 8
		}
	}
	add(src)
	add(dst)
	sum += uint32(proto)
	sum += uint32(len(seg))&0xffff + uint32(len(seg))>>16
	add(seg)
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// checksumOK reports whether the TCP or UDP checksum of pkt is right.
func checksumOK(pkt []byte) bool {
	proto, off, src, dst, ok := transport(pkt)
	if !ok || (proto != protoTCP && proto != protoUDP) {
		return false
	}
	return l4Checksum(proto, src, dst, pkt[off:]) == 0
}
