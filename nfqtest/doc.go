// Package nfqtest is a fake nfnetlink_queue kernel for tests: it lets a
// program test its NFQUEUE handlers, and any code that uses an
// *nfqueue.Conn, without root, without iptables and without a real kernel
// queue.
//
// A Kernel plays the kernel at the byte level. It gives the Conn one end of
// a Unix socket pair (through nfqueue.NewConn) and serves the other end: it
// answers the CONFIG request that binds the queue, records the
// configuration, sends the Conn PACKET messages built from the packets a
// test injects, and decodes the VERDICT and VERDICT_BATCH messages the Conn
// sends back. Everything between the handler and the socket is the real
// code of package nfqueue: decoding, Serve and its batching, deferred
// verdicts, the exactly-once checks and the error paths.
//
//	func TestPolicy(t *testing.T) {
//		k := nfqtest.New(t, 0, nil) // queue 0, default Config
//		go k.Conn().Serve(context.Background(), policy)
//		id := k.InjectBytes(nfqtest.UDP(src, dst, []byte("hello")))
//		v, err := k.WaitVerdict(id, time.Second)
//		if err != nil {
//			t.Fatal(err)
//		}
//		if !v.Matches(nfqueue.Accept.WithMark(7)) {
//			t.Errorf("verdict %v", v)
//		}
//	}
//
// New closes the Kernel and its Conn when the test ends.
//
// # Packets
//
// Inject takes an nfqueue.Packet, the struct a handler receives: the fields
// it sets are sent as the kernel would send them. InjectBytes takes only the
// packet bytes, from the network header on. UDP builds such bytes for a UDP
// datagram. Packets built with gopacket work the same way:
//
//	buf := gopacket.NewSerializeBuffer()
//	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
//		SrcIP: net.IPv4(10, 0, 0, 1), DstIP: net.IPv4(10, 0, 0, 2)}
//	udp := &layers.UDP{SrcPort: 4000, DstPort: 53}
//	udp.SetNetworkLayerForChecksum(ip)
//	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
//	if err := gopacket.SerializeLayers(buf, opts, ip, udp, gopacket.Payload(query)); err != nil {
//		t.Fatal(err)
//	}
//	id := k.InjectBytes(buf.Bytes())
//
// # Verdicts and errors
//
// Each verdict the Kernel receives is recorded as a Verdict: the packet id,
// the decision and every option the message carried, and whether it came
// in a VERDICT_BATCH. A batch verdict is recorded once per packet it
// covers. WaitVerdict waits for the verdict of one packet, WaitVerdicts for
// a number of them, Verdicts returns all so far.
//
// The Kernel checks verdicts as the kernel does: a verdict for a packet
// that is not waiting gets ENOENT, one sent on a socket that does not own
// the queue EPERM, an unknown verdict code EINVAL, each as an NLMSG_ERROR
// that the Conn reports with the packet id (through ReadPacket or
// Config.OnError). FailVerdict makes the Kernel answer the next verdict for
// a packet with a chosen errno instead; FailBind does the same for binding,
// to test EPERM (no CAP_NET_ADMIN, or a queue owned by another process),
// EOPNOTSUPP (a flag this kernel lacks) and the like.
//
// A request with a malformed attribute fails the test: the kernel would
// silently apply what precedes the bad attribute and ignore the rest, and
// no correct Conn sends one.
//
// Requests are handled in the background, in order per socket. Inject,
// Verdicts, Pending and Config first handle every request the Conn has
// already sent, as if the kernel handled each the moment it was sent:
// after Conn.SetVerdict returns its verdict is visible at once, and an
// error it causes reaches the Conn before the next injected packet. Serve sends a handler's verdict a little
// after the handler returns: use WaitVerdict for those.
//
// # What is not simulated
//
//   - Receive buffer overruns. The kernel reports them with an ENOBUFS
//     error on the netlink socket, which a Unix socket cannot carry, so
//     the ErrOverrun path of a Conn cannot be exercised here: use a real
//     kernel (the package's integration tests do).
//   - The queue length: the Kernel never drops a packet because too many
//     wait, so Config.FailOpen changes nothing here.
//   - Checks of replacement payloads, conntrack and VLAN changes: they are
//     recorded as sent, not applied to anything.
//   - More than one queue: a Kernel serves the queue of its last Open.
//     Use one Kernel per queue.
//
// The Kernel needs Linux (nfqueue.NewConn works only there); elsewhere New
// and NewKernel skip the test.
package nfqtest
