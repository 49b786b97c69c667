package main

import (
	"fmt"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// summary is what nfq shows of a packet's headers.
type summary struct {
	Family string `json:"family,omitempty"` // "ip" or "ip6"
	Proto  string `json:"proto"`            // "tcp", "udp", "icmp", "icmpv6", or the protocol number
	Src    string `json:"src,omitempty"`
	Dst    string `json:"dst,omitempty"`
	Sport  uint16 `json:"sport,omitempty"`
	Dport  uint16 `json:"dport,omitempty"`
	// Info is the protocol detail: TCP flags and payload size, ICMP type,
	// UDP payload size.
	Info string `json:"info,omitempty"`
	// PayloadLen is the transport payload length (TCP, UDP), when known.
	PayloadLen int `json:"payload_len"`
	// Payload is the transport payload, aliasing the decoded bytes.
	Payload []byte `json:"-"`
}

// decode summarizes a packet that starts at its network header.
func decode(b []byte) summary {
	var s summary
	if len(b) == 0 {
		s.Proto = "?"
		s.Info = "no payload copied"
		return s
	}
	first := gopacket.LayerType(layers.LayerTypeIPv4)
	switch b[0] >> 4 {
	case 4:
	case 6:
		first = layers.LayerTypeIPv6
	default:
		s.Proto = "?"
		s.Info = fmt.Sprintf("not IP (version %d)", b[0]>>4)
		return s
	}
	pkt := gopacket.NewPacket(b, first, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	var l4 uint8
	switch ip := pkt.NetworkLayer().(type) {
	case *layers.IPv4:
		s.Family, s.Src, s.Dst, l4 = "ip", ip.SrcIP.String(), ip.DstIP.String(), uint8(ip.Protocol)
	case *layers.IPv6:
		s.Family, s.Src, s.Dst, l4 = "ip6", ip.SrcIP.String(), ip.DstIP.String(), uint8(ip.NextHeader)
	}
	s.Proto = fmt.Sprint(l4)
	switch t := pkt.TransportLayer().(type) {
	case *layers.TCP:
		s.Proto, s.Sport, s.Dport = "tcp", uint16(t.SrcPort), uint16(t.DstPort)
		s.Payload, s.PayloadLen = t.Payload, len(t.Payload)
		s.Info = fmt.Sprintf("[%s] seq %d", tcpFlags(t), t.Seq)
		if t.ACK {
			s.Info += fmt.Sprintf(" ack %d", t.Ack)
		}
		s.Info += fmt.Sprintf(" win %d length %d", t.Window, len(t.Payload))
	case *layers.UDP:
		s.Proto, s.Sport, s.Dport = "udp", uint16(t.SrcPort), uint16(t.DstPort)
		s.Payload, s.PayloadLen = t.Payload, len(t.Payload)
		s.Info = fmt.Sprintf("length %d", len(t.Payload))
	case *layers.SCTP:
		s.Proto, s.Sport, s.Dport = "sctp", uint16(t.SrcPort), uint16(t.DstPort)
	}
	if l := pkt.Layer(layers.LayerTypeICMPv4); l != nil {
		ic := l.(*layers.ICMPv4)
		s.Proto = "icmp"
		switch ic.TypeCode.Type() {
		case layers.ICMPv4TypeEchoRequest:
			s.Info = fmt.Sprintf("echo request id %d seq %d", ic.Id, ic.Seq)
		case layers.ICMPv4TypeEchoReply:
			s.Info = fmt.Sprintf("echo reply id %d seq %d", ic.Id, ic.Seq)
		default:
			s.Info = ic.TypeCode.String()
		}
	}
	if l := pkt.Layer(layers.LayerTypeICMPv6); l != nil {
		s.Proto = "icmpv6"
		s.Info = l.(*layers.ICMPv6).TypeCode.String()
		if e, ok := pkt.Layer(layers.LayerTypeICMPv6Echo).(*layers.ICMPv6Echo); ok {
			s.Info += fmt.Sprintf(" id %d seq %d", e.Identifier, e.SeqNumber)
		}
	}
	if el := pkt.ErrorLayer(); el != nil && s.Info == "" {
		s.Info = "undecodable: " + el.Error().Error()
	}
	return s
}

func tcpFlags(t *layers.TCP) string {
	var b strings.Builder
	for _, f := range []struct {
		on bool
		c  byte
	}{{t.SYN, 'S'}, {t.FIN, 'F'}, {t.RST, 'R'}, {t.PSH, 'P'}, {t.URG, 'U'}, {t.ECE, 'E'}, {t.CWR, 'W'}} {
		if f.on {
			b.WriteByte(f.c)
		}
	}
	if t.ACK {
		b.WriteByte('.')
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// endpoint formats an address and port as tcpdump does ("10.0.0.1.53"),
// with brackets for IPv6 ("[fd00::1]:53") to stay readable.
func endpoint(addr string, port uint16, hasPorts bool) string {
	if !hasPorts {
		return addr
	}
	if strings.Contains(addr, ":") {
		return fmt.Sprintf("[%s]:%d", addr, port)
	}
	return fmt.Sprintf("%s:%d", addr, port)
}

// hasPorts reports whether the summary's protocol has ports.
func (s *summary) hasPorts() bool {
	switch s.Proto {
	case "tcp", "udp", "sctp":
		return true
	}
	return false
}

// flow returns "src > dst" with ports.
func (s *summary) flow() string {
	if s.Src == "" {
		return "-"
	}
	return endpoint(s.Src, s.Sport, s.hasPorts()) + " > " + endpoint(s.Dst, s.Dport, s.hasPorts())
}

// detail is a short protocol detail: TCP flags and payload size, the ICMP
// type.
func (s *summary) detail() string {
	switch s.Proto {
	case "tcp":
		d := s.Info
		if i := strings.IndexByte(d, ']'); i >= 0 {
			d = d[:i+1]
		}
		if s.PayloadLen > 0 {
			d += fmt.Sprintf(" %dB", s.PayloadLen)
		}
		return d
	case "udp":
		return fmt.Sprintf("%dB", s.PayloadLen)
	case "icmp", "icmpv6":
		d := s.Info
		if i := strings.Index(d, " id "); i >= 0 {
			if j := strings.Index(d, " seq "); j > i {
				d = d[:i] + d[j:]
			}
		}
		return strings.Replace(d, "echo request", "echo", 1)
	}
	return ""
}
