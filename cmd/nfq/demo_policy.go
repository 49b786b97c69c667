package main

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/nfqueue-go/nfqueue"
)

// The demo's addresses, ports and policy. The addresses come from a
// private range and exist only inside the demo's namespaces.
const (
	demoClientIP = "10.66.0.1"
	demoServerIP = "10.66.0.2"
	demoPrefix   = 24
	demoClientIf = "veth-c"
	demoServerIf = "veth-s"
	demoQueue    = 0
	demoTable    = "nfq-demo"

	portEcho    = 7001 // UDP, accepted
	portBlocked = 7002 // UDP, dropped
	portLogin   = 7003 // TCP, payload rewritten
	portBulk    = 7004 // TCP, marked and then bypassing the queue

	// offloadMark is the mark whose flows skip the queue.
	offloadMark = 0x2a
	// inspectPackets is how many packets of the bulk connection the policy
	// looks at before it marks the next one.
	inspectPackets = 3
)

// The rewrite: same length, so TCP sequence numbers stay valid.
var (
	secret = []byte("hunter2")
	masked = []byte("*******")
)

// flowNames names the workload's flows in the output.
var flowNames = map[string]string{
	"echo":    fmt.Sprintf("udp/%d", portEcho),
	"blocked": fmt.Sprintf("udp/%d", portBlocked),
	"login":   fmt.Sprintf("tcp/%d", portLogin),
	"bulk":    fmt.Sprintf("tcp/%d", portBulk),
	"ping":    "icmp",
}

// policy decides the verdicts of the demo and counts what it did.
type policy struct {
	mu        sync.Mutex
	total     int            // packets seen
	byFlow    map[string]int // packets seen per flow
	dropped   int            // packets of the blocked flow dropped
	rewritten int            // packets of the login flow rewritten
	bulkMark  int            // number of the bulk packet that got the mark (0: none yet)
	afterMark int            // bulk packets seen after the marked one
	other     int            // packets of no flow of the workload
}

func newPolicy() *policy { return &policy{byFlow: make(map[string]int)} }

// decide returns the verdict for a packet with summary s, and the flow and
// a note for the output.
func (pl *policy) decide(pkt []byte, truncated bool, s *summary) (v nfqueue.Verdict, flow, note string) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.total++
	flow = flowOf(s)
	if flow == "" {
		pl.other++
		return nfqueue.Accept, "other", "not part of the workload"
	}
	pl.byFlow[flow]++
	n := pl.byFlow[flow]
	switch flow {
	case "blocked":
		pl.dropped++
		return nfqueue.Drop, flow, ""
	case "login":
		if !truncated {
			if out := rewritePayload(pkt, secret, masked); out != nil {
				pl.rewritten++
				return nfqueue.Accept.WithPayload(out), flow, fmt.Sprintf("%q -> %q", secret, masked)
			}
		}
		return nfqueue.Accept, flow, ""
	case "bulk":
		switch {
		case pl.bulkMark != 0:
			pl.afterMark++
			return nfqueue.Accept, flow, "seen after the mark: the bypass did not work"
		case n <= inspectPackets:
			return nfqueue.Accept, flow, fmt.Sprintf("inspecting %d/%d", n, inspectPackets)
		default:
			pl.bulkMark = n
			return nfqueue.Accept.WithMark(offloadMark), flow, "marked: the rest of the connection bypasses the queue"
		}
	}
	return nfqueue.Accept, flow, ""
}

// flowOf names the workload flow of a packet sent to the server.
func flowOf(s *summary) string {
	if s.Dst != demoServerIP {
		return ""
	}
	switch {
	case s.Proto == "udp" && s.Dport == portEcho:
		return "echo"
	case s.Proto == "udp" && s.Dport == portBlocked:
		return "blocked"
	case s.Proto == "tcp" && s.Dport == portLogin:
		return "login"
	case s.Proto == "tcp" && s.Dport == portBulk:
		return "bulk"
	case s.Proto == "icmp":
		return "ping"
	}
	return ""
}

// countLines counts the lines of b that contain sub.
func countLines(b, sub []byte) int {
	n := 0
	for _, l := range bytes.Split(b, []byte("\n")) {
		if bytes.Contains(l, sub) {
			n++
		}
	}
	return n
}
