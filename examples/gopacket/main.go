// Command gopacket decodes every queued packet with gopacket and prints its
// layers, then accepts it. It stops cleanly on SIGINT or SIGTERM.
//
// Feed it with a rule such as
//
//	iptables -A INPUT -p tcp --dport 80 -j NFQUEUE --queue-num 1 --queue-bypass
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/nfqueue-go/nfqueue"
)

func main() {
	queue := flag.Uint("q", 0, "queue number (--queue-num of the NFQUEUE rule)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	conn, err := nfqueue.Open(uint16(*queue), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	err = conn.Serve(ctx, func(p *nfqueue.Packet) nfqueue.Verdict {
		// The payload starts at the network header: IPv4 or IPv6 by the
		// packet's family, Ethernet for the bridge family's L2 header.
		first := gopacket.LayerType(layers.LayerTypeIPv4)
		switch p.Family {
		case nfqueue.FamilyIPv6:
			first = layers.LayerTypeIPv6
		case nfqueue.FamilyBridge:
			if p.HwProtocol == 0x86dd {
				first = layers.LayerTypeIPv6
			}
		}
		pkt := gopacket.NewPacket(p.Payload, first, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
		fmt.Printf("id=%d %v\n", p.ID, pkt)
		return nfqueue.Accept
	})
	if err != nil && err != context.Canceled {
		log.Fatal(err)
	}
}
