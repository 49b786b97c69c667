package main

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/nfqueue-go/nfqueue"
	"github.com/nfqueue-go/nfqueue/rules"
)

// check is one promise of the policy and what was observed.
type check struct {
	Name     string `json:"name"`
	Promise  string `json:"promise"`
	Observed string `json:"observed"`
	// Status is "pass", "fail", or "skip" when the evidence is unavailable.
	Status string `json:"status"`
}

// kernelInfo is the kernel's view of the demo's queue and rules.
type kernelInfo struct {
	Queued       uint32 `json:"queued"` // packets queued since bind (last packet id)
	Waiting      uint32 `json:"waiting"`
	QueueDropped uint32 `json:"queue_dropped"`
	UserDropped  uint32 `json:"user_dropped"`
	// Bypassed is the counter of the rule that accepts offloaded
	// connections before the queue rule.
	Bypassed uint64 `json:"bypassed"`
	// QueueRule is the counter of the queue rule.
	QueueRule uint64 `json:"queue_rule"`
	Error     string `json:"error,omitempty"`
}

// demoSummary is the demo's result.
type demoSummary struct {
	Type        string            `json:"type"` // "summary"
	OK          bool              `json:"ok"`
	Duration    string            `json:"duration"`
	Interrupted bool              `json:"interrupted,omitempty"`
	Packets     int               `json:"packets"` // packets nfq decided
	Verdicts    map[string]uint64 `json:"verdicts"`
	Checks      []check           `json:"checks"`
	Passed      int               `json:"passed"`
	Failed      int               `json:"failed"`
	Skipped     int               `json:"skipped"`
	Kernel      kernelInfo        `json:"kernel"`
	CleanedUp   bool              `json:"cleaned_up"`
}

func (s *demoSummary) add(name, promise, observed string, ok bool) {
	st := "pass"
	if !ok {
		st = "fail"
	}
	s.Checks = append(s.Checks, check{Name: name, Promise: promise, Observed: observed, Status: st})
}

// evaluate compares what the receivers got and what the kernel counted
// with what the policy promised.
func (d *demo) evaluate(s *demoSummary, res *results, st *nfqueue.Stats, ri []rules.RuleInfo, rerr error) {
	pl := d.pol
	pl.mu.Lock()
	defer pl.mu.Unlock()
	res.mu.Lock()
	defer res.mu.Unlock()
	s.Packets = pl.total
	s.Verdicts = map[string]uint64{"accept": st.Accepted, "drop": st.Dropped}

	s.add("echo", fmt.Sprintf("%s is accepted: every request is answered", flowNames["echo"]),
		fmt.Sprintf("the client sent %d requests and got %d replies; the queue saw %d", res.sentEcho, res.echoReplies, pl.byFlow["echo"]),
		res.sentEcho > 0 && res.echoReplies == res.sentEcho)

	s.add("blocked", fmt.Sprintf("%s is dropped: the server receives nothing", flowNames["blocked"]),
		fmt.Sprintf("the client sent %d datagrams, the server received %d; the queue dropped %d", res.sentBlocked, res.blockedRecv, pl.dropped),
		res.sentBlocked > 0 && res.blockedRecv == 0 && pl.dropped == res.sentBlocked)

	withMasked, withSecret := countLines(res.loginData, masked), countLines(res.loginData, secret)
	s.add("rewrite", fmt.Sprintf("%s is rewritten: the server reads %q where the client wrote %q", flowNames["login"], masked, secret),
		fmt.Sprintf("the client wrote %d lines; the server read %d with %q and %d with %q; %d packets rewritten",
			res.sentLogin, withMasked, masked, withSecret, secret, pl.rewritten),
		res.sentLogin > 0 && withMasked == res.sentLogin && withSecret == 0 && pl.rewritten > 0 &&
			bytes.Count(res.loginData, []byte("\n")) == res.sentLogin)

	bypassed, queueRule, counters := uint64(0), uint64(0), rerr == nil
	for _, r := range ri {
		switch {
		case strings.HasPrefix(r.Comment, "offloaded"):
			bypassed += r.Packets
		case strings.HasPrefix(r.Comment, "everything else"):
			queueRule += r.Packets
		}
	}
	s.Kernel.Bypassed, s.Kernel.QueueRule = bypassed, queueRule
	wantBytes := res.sentBulk * res.bulkChunkLen
	obs := fmt.Sprintf("the queue saw %d packets of the connection, marked packet %d, then saw %d more; the server got %d of %d bytes",
		pl.byFlow["bulk"], pl.bulkMark, pl.afterMark, res.bulkBytes, wantBytes)
	ok := pl.bulkMark == inspectPackets+1 && pl.afterMark == 0 && res.bulkBytes == wantBytes && wantBytes > 0
	if counters {
		obs += fmt.Sprintf("; the kernel's counter of the ct mark rule shows %d packets that bypassed the queue", bypassed)
		ok = ok && bypassed > 0
	} else {
		obs += fmt.Sprintf("; rule counters unavailable: %v", rerr)
	}
	promise := fmt.Sprintf("%s is marked %#x after %d packets: the rest of the connection bypasses the queue", flowNames["bulk"], offloadMark, inspectPackets)
	if pl.bulkMark == 0 && pl.afterMark == 0 && pl.byFlow["bulk"] <= inspectPackets {
		s.Checks = append(s.Checks, check{Name: "offload", Promise: promise, Status: "skip",
			Observed: fmt.Sprintf("the workload ended before the connection sent %d packets: %s", inspectPackets+1, obs)})
	} else {
		s.add("offload", promise, obs, ok)
	}

	s.add("ping", "icmp is accepted: every ping is answered",
		fmt.Sprintf("the client sent %d pings and got %d replies; the queue saw %d", res.sentPing, res.pingReplies, pl.byFlow["ping"]),
		res.sentPing > 0 && res.pingReplies == res.sentPing)

	promise = "the kernel queued exactly the packets nfq decided, and lost none"
	if st.KernelErr != nil {
		s.Kernel.Error = st.KernelErr.Error()
		why := "unreadable"
		if d.userns {
			why = "unreadable inside a user namespace"
		}
		s.Checks = append(s.Checks, check{Name: "kernel", Promise: promise,
			Observed: fmt.Sprintf("/proc/net/netfilter/nfnetlink_queue is %s (%v)", why, st.KernelErr), Status: "skip"})
	} else {
		k := st.Kernel
		s.Kernel.Queued, s.Kernel.Waiting, s.Kernel.QueueDropped, s.Kernel.UserDropped = k.LastID, k.Waiting, k.QueueDropped, k.UserDropped
		obs := fmt.Sprintf("/proc: queue %d queued %d packets, %d waiting, %d dropped (queue full), %d dropped (socket full); nfq decided %d",
			demoQueue, k.LastID, k.Waiting, k.QueueDropped, k.UserDropped, pl.total)
		ok := int(k.LastID) == pl.total && k.Waiting == 0 && k.QueueDropped == 0 && k.UserDropped == 0
		if counters {
			obs += fmt.Sprintf("; the queue rule's counter shows %d", queueRule)
			ok = ok && queueRule == uint64(k.LastID)
		}
		s.add("kernel", promise, obs, ok)
	}
	for _, c := range s.Checks {
		switch c.Status {
		case "pass":
			s.Passed++
		case "fail":
			s.Failed++
		default:
			s.Skipped++
		}
	}
	s.OK = s.Failed == 0 && !s.Interrupted
}

func (d *demo) printSummary(s *demoSummary) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nsummary after %s: %d packets queued and decided (%d accepted, %d dropped)\n", s.Duration, s.Packets, s.Verdicts["accept"], s.Verdicts["drop"])
	for _, c := range s.Checks {
		fmt.Fprintf(&b, "  %-4s  %-8s %s\n  %-4s  %-8s %s\n", strings.ToUpper(c.Status), c.Name, c.Promise, "", "", c.Observed)
	}
	switch {
	case s.Interrupted:
		fmt.Fprintf(&b, "interrupted: %d promises held, %d broken, %d unchecked", s.Passed, s.Failed, s.Skipped)
	case s.Failed == 0 && s.Skipped == 0:
		fmt.Fprintf(&b, "all %d promises held", s.Passed)
	case s.Failed == 0:
		fmt.Fprintf(&b, "%d promises held, %d could not be checked here", s.Passed, s.Skipped)
	default:
		fmt.Fprintf(&b, "%d of %d promises BROKEN", s.Failed, len(s.Checks))
	}
	if s.CleanedUp {
		b.WriteString("; the sandbox is removed")
	}
	d.out.line(b.String(), s)
}
