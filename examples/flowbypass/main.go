// Command flowbypass judges only the first packet of each flow. The verdict
// sets a packet mark; rules save it into the connection's mark and accept
// the flow's later packets before they reach the queue:
//
//	iptables -A OUTPUT -m connmark --mark 0x1/0x1 -j ACCEPT
//	iptables -A OUTPUT -p tcp -j NFQUEUE --queue-num 3 --queue-bypass
//	iptables -t mangle -A POSTROUTING -m mark --mark 0x1/0x1 -j CONNMARK --save-mark --mask 0x1
//
// Package github.com/nfqueue-go/nfqueue/rules installs the same three rules
// through netlink with one call, Table.AddFlowBypass. This works on every
// kernel. Verdict.WithConnMark sets the connection's
// mark directly, but only on kernels built with
// CONFIG_NETFILTER_NETLINK_GLUE_CT.
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/nfqueue-go/nfqueue"
)

func main() {
	queue := flag.Uint("q", 3, "queue number")
	flag.Parse()
	conn, err := nfqueue.Open(uint16(*queue), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = conn.Serve(ctx, func(p *nfqueue.Packet) nfqueue.Verdict {
		log.Printf("judging a new flow: packet %d, %d bytes", p.ID, len(p.Payload))
		// Accept and mark: the rest of the flow skips the queue.
		return nfqueue.Accept.WithMark(1)
	})
	if err != nil && err != context.Canceled {
		log.Fatal(err)
	}
}
