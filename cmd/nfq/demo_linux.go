package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nfqueue-go/nfqueue"
	"github.com/nfqueue-go/nfqueue/rules"
)

func demoCommand() *command {
	return &command{
		name:  "demo",
		short: "build a sandbox, queue its traffic, apply a policy and check that it held",
		usage: "demo [--duration D] [--json]",
		long: `Builds a sandbox: two network namespaces, "client" and "server", joined by a
veth pair with addresses from 10.66.0.0/24 that exist only there. In the
server namespace it installs its own nftables rules (through netlink, no nft
or iptables binary needed) that send the server's incoming traffic to queue 0,
and serves that queue with a visible policy while a small workload runs:

  udp/7001  echo requests        accepted; the client counts the replies
  udp/7002  datagrams            dropped; the server must receive none
  tcp/7003  a login with a password
                                 rewritten: "hunter2" becomes "*******" with
                                 fixed checksums; the server must read that
  tcp/7004  a bulk transfer      its first packets are inspected, then one is
                                 marked 0x2a; a rule saves the mark into the
                                 connection mark, and a rule before the queue
                                 rule accepts marked connections: the rest of
                                 the transfer bypasses the queue
  icmp      pings                accepted; the client counts the replies

Each queued packet is printed as it is decided. The summary compares what the
receivers actually got, and the kernel's own counters, with what the policy
promised; nfq exits with status 1 if a promise was broken. Everything the
demo creates disappears when it ends, also on Ctrl-C or error: the namespaces
have no name and die with the process.

Runs as root, or as a normal user where unprivileged user namespaces are
allowed (nfq then runs itself in a new user and network namespace).`,
		setup: func(fs *flag.FlagSet, e *env) func(context.Context) error {
			o := &demoOpts{}
			fs.DurationVar(&o.duration, "duration", 5*time.Second, "how long the workload runs")
			fs.BoolVar(&o.json, "json", false, "print JSON objects, one per line: sandbox, packets, summary")
			return func(ctx context.Context) error { return runDemo(ctx, e, o) }
		},
	}
}

type demoOpts struct {
	duration time.Duration
	json     bool
}

// usernsEnv is set in the environment of nfq re-run inside a user namespace.
const usernsEnv = "NFQ_DEMO_USERNS"

func runDemo(ctx context.Context, e *env, o *demoOpts) error {
	if o.duration < 500*time.Millisecond || o.duration > time.Hour {
		return usagef("--duration must be between 500ms and 1h")
	}
	if os.Geteuid() != 0 && os.Getenv(usernsEnv) == "" {
		return reexecInUserNS(ctx, e)
	}
	d := &demo{e: e, o: o, out: &printer{w: e.stdout, json: o.json}, pol: newPolicy(), start: time.Now()}
	d.userns = os.Getenv(usernsEnv) != ""
	defer d.cleanup()
	if err := d.setup(); err != nil {
		return err
	}
	sum, err := d.run(ctx)
	if err != nil {
		return err
	}
	d.cleanup()
	sum.CleanedUp = d.cleanErr == nil
	d.printSummary(sum)
	if d.cleanErr != nil {
		return fmt.Errorf("cleanup: %w", d.cleanErr)
	}
	if ctx.Err() != nil {
		return errors.New("interrupted; the sandbox is removed")
	}
	if sum.Failed > 0 {
		return fmt.Errorf("%d of %d promises broken", sum.Failed, len(sum.Checks))
	}
	return nil
}

// demo is the sandbox and its state.
type demo struct {
	e      *env
	o      *demoOpts
	out    *printer
	pol    *policy
	start  time.Time
	userns bool

	client, server *netNS
	names          *ifNames
	tab            *rules.Table
	conn           *nfqueue.Conn
	ruleText       []string

	closers  []io.Closer // sockets, closed in reverse order
	cleaned  bool
	cleanErr error
}

func (d *demo) progress(format string, args ...any) {
	if d.o.json {
		d.e.log.Debug(fmt.Sprintf(format, args...))
		return
	}
	fmt.Fprintf(d.e.stderr, "  "+format+"\n", args...)
}

// setup builds the sandbox: namespaces, veth, addresses, rules, queue.
func (d *demo) setup() error {
	var err error
	d.progress("creating network namespaces client and server")
	if d.client, err = newNetNS("client"); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	if d.server, err = newNetNS("server"); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	d.names = &ifNames{ns: d.server}
	d.progress("joining them with veth pair %s (%s/%d) and %s (%s/%d)", demoClientIf, demoClientIP, demoPrefix, demoServerIf, demoServerIP, demoPrefix)
	if err := d.client.addVeth(demoClientIf, d.server, demoServerIf); err != nil {
		return fmt.Errorf("sandbox: veth: %w", err)
	}
	for _, x := range []struct {
		ns   *netNS
		ifn  string
		addr string
	}{{d.client, demoClientIf, demoClientIP}, {d.server, demoServerIf, demoServerIP}} {
		if err := x.ns.addAddr(x.ifn, netip.PrefixFrom(netip.MustParseAddr(x.addr), demoPrefix)); err != nil {
			return fmt.Errorf("sandbox: address %s on %s: %w", x.addr, x.ifn, err)
		}
		if err := x.ns.linkUp(x.ifn); err != nil {
			return fmt.Errorf("sandbox: %s up: %w", x.ifn, err)
		}
	}
	// Let the client open ICMP echo ("ping") sockets.
	gid := os.Getegid()
	if err := d.client.writeSysctl("ipv4/ping_group_range", fmt.Sprintf("%d %d", gid, gid)); err != nil {
		return fmt.Errorf("sandbox: allow ping sockets: %w", err)
	}

	d.progress("binding queue %d in the server namespace", demoQueue)
	d.conn, err = nfqueue.Open(demoQueue, &nfqueue.Config{
		NetNS:     d.server.Path(),
		BindRetry: time.Second,
		OnError:   func(err error) { d.e.log.Warn("queue error", "err", err) },
	})
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}

	d.progress("installing rules in table %s of the server namespace", demoTable)
	d.tab, err = rules.Open(&rules.Config{Table: demoTable, NetNSFd: d.server.Fd()})
	if err != nil {
		return fmt.Errorf("sandbox: rules: %w", err)
	}
	serverAddr := netip.PrefixFrom(netip.MustParseAddr(demoServerIP), 32)
	offloaded := rules.MarkMatch{Op: rules.OpEq, Value: offloadMark}
	filter := rules.Chain{Name: "queue", Hook: rules.HookInput, Priority: rules.PriorityFilter}
	save := rules.Chain{Name: "save-mark", Hook: rules.HookInput, Priority: rules.PriorityFilter + 10}
	chains := []struct {
		c  rules.Chain
		rs []rules.Rule
	}{
		{filter, []rules.Rule{
			{Match: rules.Match{CtMark: offloaded}, Action: rules.ActionAccept, Comment: "offloaded connections skip the queue"},
			{Match: rules.Match{InIface: demoServerIf, DstAddr: serverAddr}, Queue: rules.Queue{Num: demoQueue}, Comment: "everything else to queue 0"},
		}},
		{save, []rules.Rule{
			{Match: rules.Match{Mark: offloaded}, Action: rules.ActionSaveMark, Comment: "a verdict's mark becomes the connection's"},
		}},
	}
	for _, ch := range chains {
		if err := d.tab.Add(ch.c, ch.rs...); err != nil {
			return fmt.Errorf("sandbox: rules: %w", err)
		}
		for _, r := range ch.rs {
			d.ruleText = append(d.ruleText, fmt.Sprintf("%s (input, priority %d): %s", ch.c.Name, ch.c.Priority, r))
		}
	}
	return nil
}

// cleanup removes the sandbox; it may run more than once.
func (d *demo) cleanup() {
	if d.cleaned {
		return
	}
	d.cleaned = true
	var errs []error
	if d.conn != nil {
		errs = append(errs, d.conn.Close())
	}
	if d.tab != nil {
		errs = append(errs, d.tab.Close())
	}
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i].Close()
	}
	for _, ns := range []*netNS{d.client, d.server} {
		if ns != nil {
			errs = append(errs, ns.Close())
		}
	}
	d.cleanErr = errors.Join(errs...)
	d.e.log.Debug("sandbox removed", "err", d.cleanErr)
}

// keep registers a socket for cleanup.
func (d *demo) keep(c io.Closer) { d.closers = append(d.closers, c) }

// sandboxInfo is the --json object describing the sandbox.
type sandboxInfo struct {
	Type       string   `json:"type"` // "sandbox"
	Namespaces []string `json:"namespaces"`
	Client     string   `json:"client"`
	Server     string   `json:"server"`
	Interfaces []string `json:"interfaces"`
	Table      string   `json:"table"`
	Backend    string   `json:"backend"`
	Rules      []string `json:"rules"`
	Queue      int      `json:"queue"`
	Duration   string   `json:"duration"`
	Rounds     int      `json:"rounds"`
	UserNS     bool     `json:"userns"`
}

func (d *demo) printHeader(rounds int, interval time.Duration) {
	info := sandboxInfo{
		Type: "sandbox", Namespaces: []string{"client", "server"},
		Client: demoClientIP, Server: demoServerIP, Interfaces: []string{demoClientIf, demoServerIf},
		Table: demoTable, Backend: d.tab.Backend().String(), Rules: d.ruleText, Queue: demoQueue,
		Duration: d.o.duration.String(), Rounds: rounds, UserNS: d.userns,
	}
	var b strings.Builder
	fmt.Fprintf(&b, "sandbox: namespace client [%s %s/%d] <-veth-> namespace server [%s %s/%d]\n",
		demoClientIf, demoClientIP, demoPrefix, demoServerIf, demoServerIP, demoPrefix)
	fmt.Fprintf(&b, "rules in table %q of the server namespace (queue backend %s):\n", demoTable, info.Backend)
	for _, r := range d.ruleText {
		fmt.Fprintf(&b, "  %s\n", r)
	}
	fmt.Fprintf(&b, "policy of queue %d:\n", demoQueue)
	fmt.Fprintf(&b, "  %-9s %-7s accept\n", flowNames["echo"], "echo")
	fmt.Fprintf(&b, "  %-9s %-7s drop\n", flowNames["blocked"], "blocked")
	fmt.Fprintf(&b, "  %-9s %-7s accept, rewriting %q to %q\n", flowNames["login"], "login", secret, masked)
	fmt.Fprintf(&b, "  %-9s %-7s accept %d packets, mark the next %#x: the connection then bypasses the queue\n", flowNames["bulk"], "bulk", inspectPackets, offloadMark)
	fmt.Fprintf(&b, "  %-9s %-7s accept\n", flowNames["ping"], "ping")
	fmt.Fprintf(&b, "workload: %d rounds, one every %v\n\n", rounds, interval)
	fmt.Fprintf(&b, "%-12s %-4s %-5s %-6s %-6s %-5s %-42s %4s  %-18s %s", "TIME", "ID", "HOOK", "IN", "OUT", "PROTO", "SOURCE > DESTINATION", "LEN", "VERDICT", "FLOW")
	d.out.line(b.String(), &info)
}

// demoLine is the live line of one packet.
func demoLine(ev *packetEvent) string {
	in, out := ev.In, ev.Out
	if in == "" {
		in = "-"
	}
	if out == "" {
		out = "-"
	}
	v := ev.verdictText()
	what := ev.flow()
	if d := ev.detail(); d != "" {
		what += " " + d
	}
	s := fmt.Sprintf("%-12s %-4d %-5s %-6s %-6s %-5s %-42s %4d  %-18s %s", ev.Time.Format("15:04:05.000"), ev.ID, ev.Hook, in, out, ev.Proto, what, ev.Len, v, ev.Flow)
	if ev.Note != "" {
		s += ": " + ev.Note
	}
	return s
}

// handle is the queue handler: decide, print, return the verdict.
func (d *demo) handle(p *nfqueue.Packet) nfqueue.Verdict {
	ev := newPacketEvent(p, d.names.name)
	v, flow, note := d.pol.decide(p.Payload, p.Truncated(), &ev.summary)
	ev.setVerdict(v)
	ev.Flow, ev.Note = flow, note
	d.out.line(demoLine(&ev), &ev)
	return v
}

// inNS opens a socket (or does anything) inside ns.
func inNS[T any](ns *netNS, fn func() (T, error)) (T, error) {
	var v T
	err := ns.Do(func() error {
		var err error
		v, err = fn()
		return err
	})
	return v, err
}

// results is what the receivers got.
type results struct {
	mu           sync.Mutex
	echoReplies  int
	blockedRecv  int
	loginData    []byte
	bulkBytes    int
	pingReplies  int
	loginDone    chan struct{}
	bulkDone     chan struct{}
	sentEcho     int
	sentBlocked  int
	sentLogin    int
	sentBulk     int
	sentPing     int
	bulkChunkLen int
}

func (r *results) add(f func()) {
	r.mu.Lock()
	f()
	r.mu.Unlock()
}

// run serves the queue while the workload runs and returns the summary.
func (d *demo) run(ctx context.Context) (*demoSummary, error) {
	interval := d.o.duration / 20
	interval = max(25*time.Millisecond, min(250*time.Millisecond, interval))
	rounds := int(d.o.duration / interval)
	d.printHeader(rounds, interval)

	srvCtx, cancelServe := context.WithCancel(context.Background())
	serveDone := make(chan error, 1)
	go func() { serveDone <- d.conn.Serve(srvCtx, d.handle) }()
	var stopOnce sync.Once
	stopServe := func() {
		stopOnce.Do(func() {
			cancelServe()
			if err := <-serveDone; err != nil && !errors.Is(err, context.Canceled) {
				d.e.log.Warn("serving the queue", "err", err)
			}
		})
	}
	defer stopServe()

	res := &results{loginDone: make(chan struct{}), bulkDone: make(chan struct{}), bulkChunkLen: 512}
	if err := d.startServers(res); err != nil {
		return nil, err
	}
	cl, err := d.startClient(res)
	if err != nil {
		return nil, err
	}

	tick := time.NewTicker(interval)
	defer tick.Stop()
	chunk := make([]byte, res.bulkChunkLen)
	for i := range chunk {
		chunk[i] = byte('a' + i%26)
	}
rounds:
	for i := 1; i <= rounds; i++ {
		if _, err := cl.echo.Write(fmt.Appendf(nil, "ping %d", i)); err == nil {
			res.add(func() { res.sentEcho++ })
		}
		if _, err := cl.blocked.Write(fmt.Appendf(nil, "blocked %d", i)); err == nil {
			res.add(func() { res.sentBlocked++ })
		}
		if _, err := fmt.Fprintf(cl.login, "user=alice password=%s round=%d\n", secret, i); err == nil {
			res.add(func() { res.sentLogin++ })
		}
		if _, err := cl.bulk.Write(chunk); err == nil {
			res.add(func() { res.sentBulk++ })
		}
		if err := cl.ping(i); err == nil {
			res.add(func() { res.sentPing++ })
		}
		select {
		case <-ctx.Done():
			break rounds
		case <-tick.C:
		}
	}
	// Close the TCP connections and give the last packets and replies a
	// moment.
	cl.login.(*net.TCPConn).CloseWrite()
	cl.bulk.(*net.TCPConn).CloseWrite()
	// This also runs after Ctrl-C, so that the summary covers a finished
	// workload; it takes a few seconds at most.
	wait := time.After(3 * time.Second)
	for _, ch := range []chan struct{}{res.loginDone, res.bulkDone} {
		select {
		case <-ch:
		case <-wait:
		}
	}
	time.Sleep(300 * time.Millisecond)

	// Read the counters while the queue and the rules still exist.
	sum := &demoSummary{Type: "summary", Duration: time.Since(d.start).Round(time.Millisecond).String(), Interrupted: ctx.Err() != nil}
	stopServe()
	st := d.conn.Stats()
	ri, rerr := d.tab.Rules()
	d.evaluate(sum, res, &st, ri, rerr)
	return sum, nil
}

// client holds the client's sockets.
type client struct {
	echo, blocked net.Conn
	login, bulk   net.Conn
	icmp          net.PacketConn
	ping          func(seq int) error
}

func (d *demo) startServers(res *results) error {
	udp := func(port int) (net.PacketConn, error) {
		return inNS(d.server, func() (net.PacketConn, error) {
			return net.ListenPacket("udp4", fmt.Sprintf("%s:%d", demoServerIP, port))
		})
	}
	echo, err := udp(portEcho)
	if err != nil {
		return fmt.Errorf("workload: %w", err)
	}
	d.keep(echo)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := echo.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = echo.WriteTo(append([]byte("pong"), buf[4:n]...), from)
		}
	}()
	blocked, err := udp(portBlocked)
	if err != nil {
		return fmt.Errorf("workload: %w", err)
	}
	d.keep(blocked)
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := blocked.ReadFrom(buf); err != nil {
				return
			}
			res.add(func() { res.blockedRecv++ })
		}
	}()
	tcp := func(port int, done chan struct{}, got func([]byte)) error {
		l, err := inNS(d.server, func() (net.Listener, error) {
			return net.Listen("tcp4", fmt.Sprintf("%s:%d", demoServerIP, port))
		})
		if err != nil {
			return fmt.Errorf("workload: %w", err)
		}
		d.keep(l)
		go func() {
			defer close(done)
			c, err := l.Accept()
			if err != nil {
				return
			}
			d.keep(c)
			buf := make([]byte, 64<<10)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					res.add(func() { got(buf[:n]) })
				}
				if err != nil {
					return
				}
			}
		}()
		return nil
	}
	if err := tcp(portLogin, res.loginDone, func(b []byte) { res.loginData = append(res.loginData, b...) }); err != nil {
		return err
	}
	return tcp(portBulk, res.bulkDone, func(b []byte) { res.bulkBytes += len(b) })
}

func (d *demo) startClient(res *results) (*client, error) {
	cl := &client{}
	dial := func(network string, port int) (net.Conn, error) {
		c, err := inNS(d.client, func() (net.Conn, error) {
			return net.DialTimeout(network, fmt.Sprintf("%s:%d", demoServerIP, port), 5*time.Second)
		})
		if err != nil {
			return nil, fmt.Errorf("workload: %w", err)
		}
		d.keep(c)
		return c, nil
	}
	var err error
	if cl.echo, err = dial("udp4", portEcho); err != nil {
		return nil, err
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, err := cl.echo.Read(buf)
			if err != nil {
				return
			}
			if strings.HasPrefix(string(buf[:n]), "pong") {
				res.add(func() { res.echoReplies++ })
			}
		}
	}()
	if cl.blocked, err = dial("udp4", portBlocked); err != nil {
		return nil, err
	}
	if cl.login, err = dial("tcp4", portLogin); err != nil {
		return nil, err
	}
	if cl.bulk, err = dial("tcp4", portBulk); err != nil {
		return nil, err
	}
	cl.icmp, err = inNS(d.client, func() (net.PacketConn, error) { return listenPing() })
	if err != nil {
		return nil, fmt.Errorf("workload: ping socket: %w", err)
	}
	d.keep(cl.icmp)
	dst := &net.UDPAddr{IP: net.ParseIP(demoServerIP)}
	cl.ping = func(seq int) error {
		_, err := cl.icmp.WriteTo(echoRequest(seq, fmt.Appendf(nil, "nfq demo ping %d", seq)), dst)
		return err
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := cl.icmp.ReadFrom(buf)
			if err != nil {
				return
			}
			if n >= 8 && buf[0] == 0 { // echo reply
				res.add(func() { res.pingReplies++ })
			}
		}
	}()
	return cl, nil
}
