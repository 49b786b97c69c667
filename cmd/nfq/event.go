package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nfqueue-go/nfqueue"
)

// packetEvent is one queued packet and its verdict, as printed by watch
// and demo: a line of text, or with --json an object on one line.
type packetEvent struct {
	Type   string    `json:"type"` // "packet"
	Time   time.Time `json:"time"`
	Queue  uint16    `json:"queue"`
	ID     uint32    `json:"id"`
	Hook   string    `json:"hook"`
	Family string    `json:"family"`
	In     string    `json:"in,omitempty"`
	Out    string    `json:"out,omitempty"`
	Mark   uint32    `json:"mark,omitempty"` // the packet's mark as queued
	Len    int       `json:"len"`            // length on the wire
	CapLen int       `json:"caplen"`         // bytes copied to userspace
	summary
	Verdict     string  `json:"verdict"`                // accept, drop, ...
	VerdictMark *uint32 `json:"verdict_mark,omitempty"` // mark set by the verdict
	Rewritten   bool    `json:"rewritten,omitempty"`    // the verdict replaced the payload
	Flow        string  `json:"flow,omitempty"`         // demo: the workload flow
	Note        string  `json:"note,omitempty"`         // demo: why this verdict
}

// newPacketEvent fills an event from a packet; ifname resolves interface
// indexes. The verdict fields are set by the caller.
func newPacketEvent(p *nfqueue.Packet, ifname func(uint32) string) packetEvent {
	ev := packetEvent{
		Type:    "packet",
		Time:    time.Now(),
		Queue:   p.Queue,
		ID:      p.ID,
		Hook:    p.Hook.String(),
		Family:  p.Family.String(),
		In:      ifname(p.InDev),
		Out:     ifname(p.OutDev),
		Mark:    p.Mark,
		Len:     p.OrigLen(),
		CapLen:  len(p.Payload),
		summary: decode(p.Payload),
	}
	return ev
}

// setVerdict records v in the event.
func (ev *packetEvent) setVerdict(v nfqueue.Verdict) {
	ev.Verdict = v.Kind().String()
	if n, ok := v.QueueNum(); ok {
		ev.Verdict += " " + strconv.Itoa(int(n))
	}
	if m, ok := v.Mark(); ok {
		ev.VerdictMark = &m
	}
	if _, ok := v.Payload(); ok {
		ev.Rewritten = true
	}
}

// verdictText is the verdict with its options, e.g. "accept mark=0x2a".
func (ev *packetEvent) verdictText() string {
	s := ev.Verdict
	if ev.VerdictMark != nil {
		s += fmt.Sprintf(" mark=%#x", *ev.VerdictMark)
	}
	if ev.Rewritten {
		s += " rewritten"
	}
	return s
}

// ifaces is "in=X out=Y" with the present interfaces.
func (ev *packetEvent) ifaces() string {
	var parts []string
	if ev.In != "" {
		parts = append(parts, "in="+ev.In)
	}
	if ev.Out != "" {
		parts = append(parts, "out="+ev.Out)
	}
	return strings.Join(parts, " ")
}

// comment is the pcapng comment of the packet: its NFQUEUE metadata and
// verdict as key=value pairs.
func (ev *packetEvent) comment() string {
	in, out := ev.In, ev.Out
	if in == "" {
		in = "-"
	}
	if out == "" {
		out = "-"
	}
	vm := "-"
	if ev.VerdictMark != nil {
		vm = fmt.Sprintf("%#x", *ev.VerdictMark)
	}
	return fmt.Sprintf("nfqueue queue=%d id=%d hook=%s in=%s out=%s mark=%#x verdict=%s verdict-mark=%s",
		ev.Queue, ev.ID, ev.Hook, in, out, ev.Mark, ev.Verdict, vm)
}

// watchLine is the tcpdump-like line of nfq watch.
func (ev *packetEvent) watchLine() string {
	var b strings.Builder
	b.WriteString(ev.Time.Format("15:04:05.000000"))
	fmt.Fprintf(&b, " q%d #%d %s", ev.Queue, ev.ID, ev.Hook)
	if s := ev.ifaces(); s != "" {
		b.WriteString(" " + s)
	}
	if ev.Mark != 0 {
		fmt.Fprintf(&b, " mark=%#x", ev.Mark)
	}
	fmt.Fprintf(&b, " %s %s %s", strings.ToUpper(ev.Proto), ev.flow(), ev.Info)
	fmt.Fprintf(&b, ", len %d", ev.Len)
	if ev.CapLen < ev.Len {
		fmt.Fprintf(&b, " (copied %d)", ev.CapLen)
	}
	b.WriteString(" -> " + ev.verdictText())
	return b.String()
}

// printer writes lines or JSON objects to a stream, one at a time.
type printer struct {
	mu   sync.Mutex
	w    io.Writer
	json bool
}

// line prints text, or v as JSON in JSON mode.
func (p *printer) line(text string, v any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		b, err := json.Marshal(v)
		if err != nil {
			b = []byte(fmt.Sprintf(`{"type":"error","error":%q}`, err.Error()))
		}
		b = append(b, '\n')
		_, _ = p.w.Write(b)
		return
	}
	_, _ = io.WriteString(p.w, text+"\n")
}
