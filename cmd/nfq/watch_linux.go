package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nfqueue-go/nfqueue"
	"github.com/nfqueue-go/nfqueue/rules"
)

func watchCommand() *command {
	return &command{
		name:  "watch",
		short: "print the packets of a queue, give them a verdict, optionally record them",
		usage: "watch -q N [--verdict accept|drop] [--mark M] [--count N] [--json] [-w FILE.pcapng] [--rule MATCH] [--netns PATH]",
		long: `Binds NFQUEUE queue N, prints one decoded line per packet that your rules send
to it, and gives each packet a verdict (accept by default). Like tcpdump, but
the packets wait for nfq: a dropped packet never arrives.

Feed the queue with your own rule, for example
  nft add rule inet filter input udp dport 53 queue num 0 bypass
  iptables -A INPUT -p udp --dport 53 -j NFQUEUE --queue-num 0 --queue-bypass
or let nfq install a temporary one with --rule 'udp dport 53': it goes into a
table of its own (nftables, through netlink; no nft or iptables binary needed)
with the bypass flag, so traffic keeps flowing should nfq die, and is removed
when nfq exits.

-w writes a pcapng capture (link type raw IP) that Wireshark and tshark open;
each packet's comment holds its queue, id, hook, interfaces, mark and verdict.

Stop with Ctrl-C; --count stops after N packets.`,
		setup: func(fs *flag.FlagSet, e *env) func(context.Context) error {
			o := &watchOpts{}
			o.queue.bits, o.mark.bits = 16, 32
			fs.Var(&o.queue, "q", "queue `number` to bind (the --queue-num of the rule)")
			fs.Var(&o.queue, "queue", "same as -q")
			fs.StringVar(&o.verdict, "verdict", "accept", "verdict for every packet: accept or drop")
			fs.Var(&o.mark, "mark", "set this packet `mark` with each accept verdict (decimal or 0x hex)")
			fs.IntVar(&o.count, "count", 0, "stop after this many packets (0: until Ctrl-C)")
			fs.BoolVar(&o.json, "json", false, "print one JSON object per packet instead of text")
			fs.StringVar(&o.write, "w", "", "write the packets to this pcapng `file`")
			fs.StringVar(&o.write, "write", "", "same as -w")
			fs.StringVar(&o.rule, "rule", "", "install a temporary rule queueing the packets that match this nft-like `match`, e.g. 'udp dport 53'")
			fs.StringVar(&o.hooks, "hook", "input,output", "hooks of the --rule, comma-separated: prerouting, input, forward, output, postrouting (a packet over loopback passes both output and input)")
			fs.StringVar(&o.netns, "netns", "", "open the queue (and the --rule) in the network namespace at this `path`, e.g. /run/netns/NAME")
			fs.UintVar(&o.copyRange, "snaplen", 0, "copy at most this many bytes of each packet (0: whole packets)")
			fs.DurationVar(&o.bindRetry, "bind-retry", 3*time.Second, "keep trying this long if another process still holds the queue")
			return func(ctx context.Context) error { return runWatch(ctx, e, o) }
		},
	}
}

type watchOpts struct {
	queue     uintFlag
	verdict   string
	mark      uintFlag
	count     int
	json      bool
	write     string
	rule      string
	hooks     string
	netns     string
	copyRange uint
	bindRetry time.Duration
}

// parseHooks reads a comma-separated list of hook names.
func parseHooks(s string) ([]rules.Hook, error) {
	var out []rules.Hook
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		found := false
		for h := rules.HookPrerouting; h <= rules.HookPostrouting; h++ {
			if h.String() == name {
				out, found = append(out, h), true
			}
		}
		if !found {
			return nil, usagef("unknown hook %q (want prerouting, input, forward, output or postrouting)", name)
		}
	}
	return out, nil
}

func runWatch(ctx context.Context, e *env, o *watchOpts) error {
	if !o.queue.set {
		return usagef("-q is required: the queue number to watch")
	}
	q := uint16(o.queue.v)
	var verdict nfqueue.Verdict
	switch o.verdict {
	case "accept":
		verdict = nfqueue.Accept
		if o.mark.set {
			verdict = verdict.WithMark(uint32(o.mark.v))
		}
	case "drop":
		verdict = nfqueue.Drop
		if o.mark.set {
			return usagef("--mark needs --verdict accept: a dropped packet keeps no mark")
		}
	default:
		return usagef("--verdict must be accept or drop, not %q", o.verdict)
	}
	if o.count < 0 {
		return usagef("--count must not be negative")
	}
	if o.copyRange > nfqueue.MaxCopyRange {
		return usagef("--snaplen must be at most %d", nfqueue.MaxCopyRange)
	}
	var match rules.Match
	var hooks []rules.Hook
	if o.rule != "" {
		var err error
		if match, err = rules.ParseMatch(o.rule); err != nil {
			return usagef("--rule: %v", err)
		}
		if err := match.Validate(); err != nil {
			return usagef("--rule: %v", err)
		}
		if hooks, err = parseHooks(o.hooks); err != nil {
			return err
		}
	}

	names := &ifNames{}
	if o.netns != "" {
		ns, err := openNetNS(o.netns)
		if err != nil {
			return err
		}
		defer ns.Close()
		names.ns = ns
	}

	errs := make(chan error, 1)
	cfg := &nfqueue.Config{
		NetNS:     o.netns,
		BindRetry: o.bindRetry,
		CopyRange: uint32(o.copyRange),
		OnError: func(err error) {
			if errors.Is(err, nfqueue.ErrOverrun) {
				e.log.Warn("packets lost: the socket buffer overflowed", "queue", q)
				return
			}
			e.log.Warn("queue error", "queue", q, "err", err)
		},
	}
	conn, err := nfqueue.Open(q, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	e.log.Debug("queue bound", "queue", q, "portid", conn.PortID(), "netns", o.netns)

	var capf *capture
	if o.write != "" {
		capf, err = createCapture(o.write, q, o.rule)
		if err != nil {
			return fmt.Errorf("capture file: %w", err)
		}
		defer func() {
			if err := capf.Close(); err != nil {
				e.log.Error("closing the capture file", "file", o.write, "err", err)
			}
		}()
	}

	var tab *rules.Table
	if o.rule != "" {
		// One table name per queue: only the process that holds the queue
		// (bound above) touches it, and replacing it removes what a killed
		// nfq watch of the same queue left behind.
		tab, err = rules.Open(&rules.Config{Table: fmt.Sprintf("nfq-watch-%d", q), NetNSPath: o.netns, Replace: true})
		if err != nil {
			return fmt.Errorf("installing --rule: %w", err)
		}
		defer func() {
			if err := tab.Close(); err != nil {
				e.log.Error("removing the temporary rule", "table", tab.Name(), "err", err)
			} else {
				e.log.Debug("temporary rule removed", "table", tab.Name())
			}
		}()
		r := rules.Rule{Match: match, Queue: rules.Queue{Num: q, Flags: rules.QueueBypass}}
		for _, h := range hooks {
			if err := tab.Add(rules.Chain{Hook: h, Priority: rules.PriorityFilter}, r); err != nil {
				return fmt.Errorf("installing --rule: %w", err)
			}
		}
		e.log.Debug("temporary rule installed", "table", tab.Name(), "backend", tab.Backend(), "rule", r.String(), "hooks", o.hooks)
	}

	where := ""
	if o.netns != "" {
		where = " in " + o.netns
	}
	rule := ""
	if o.rule != "" {
		rule = fmt.Sprintf(", rule %q at %s", match.String(), o.hooks)
	}
	fmt.Fprintf(e.stderr, "nfq: watching queue %d%s%s, verdict %v; Ctrl-C to stop\n", q, where, rule, verdict)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := &printer{w: e.stdout, json: o.json}
	var seen, written atomic.Int64
	h := func(p *nfqueue.Packet) nfqueue.Verdict {
		n := seen.Add(1)
		if o.count > 0 && n > int64(o.count) {
			return verdict // read before the stop took effect: not shown
		}
		ev := newPacketEvent(p, names.name)
		ev.setVerdict(verdict)
		out.line(ev.watchLine(), &ev)
		if capf != nil {
			if err := capf.write(ev.Time, p.Payload, p.OrigLen(), ev.Hook, ev.comment()); err != nil {
				select {
				case errs <- fmt.Errorf("writing %s: %w", o.write, err):
				default:
				}
				cancel()
			} else {
				written.Add(1)
			}
		}
		if o.count > 0 && n == int64(o.count) {
			cancel()
		}
		return verdict
	}
	serr := conn.Serve(ctx, h)
	// Give the packets still queued the verdict instead of letting Close
	// drop them. With --rule, first delete the rules, so that no packet is
	// queued anymore, and only then the table: deleting a base chain makes
	// the kernel drop every packet waiting in the namespace's queues.
	if tab != nil {
		ris, err := tab.Rules()
		for _, ri := range ris {
			if err == nil {
				err = tab.Delete(ri)
			}
		}
		if err != nil {
			e.log.Warn("removing the temporary rule", "table", tab.Name(), "err", err)
		}
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	var drained int
	_ = conn.Serve(dctx, func(*nfqueue.Packet) nfqueue.Verdict { drained++; return verdict })
	dcancel()
	if drained > 0 {
		e.log.Debug("verdicts given while stopping", "packets", drained)
	}
	if tab != nil {
		if err := tab.Close(); err != nil {
			e.log.Error("removing the temporary rule", "table", tab.Name(), "err", err)
		}
	}
	st := conn.Stats()
	shown := seen.Load()
	if o.count > 0 && shown > int64(o.count) {
		shown = int64(o.count)
	}
	msg := fmt.Sprintf("nfq: %d packets shown, %d verdicts (%d accepted, %d dropped)", shown, st.Accepted+st.Dropped, st.Accepted, st.Dropped)
	if capf != nil {
		msg += fmt.Sprintf("; %d written to %s", written.Load(), o.write)
	}
	if st.KernelErr == nil {
		msg += fmt.Sprintf("; kernel: %d dropped (queue full), %d dropped (socket full)", st.Kernel.QueueDropped, st.Kernel.UserDropped)
	}
	fmt.Fprintln(e.stderr, msg)
	select {
	case err := <-errs:
		return err
	default:
	}
	if serr != nil && !errors.Is(serr, context.Canceled) {
		return serr
	}
	return nil
}
