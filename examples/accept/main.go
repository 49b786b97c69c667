// Command accept is the smallest NFQUEUE consumer: it binds a queue, prints
// one line per packet, accepts every packet, and stops cleanly on SIGINT or
// SIGTERM.
//
// Feed it with a rule such as
//
//	iptables -A OUTPUT -p icmp -j NFQUEUE --queue-num 0 --queue-bypass
//
// and run it with CAP_NET_ADMIN (root, or setcap cap_net_admin+ep).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/nfqueue-go/nfqueue"
)

func main() {
	queue := flag.Uint("q", 0, "queue number (--queue-num of the NFQUEUE rule)")
	count := flag.Int("n", 0, "stop after this many packets (0: run until interrupted)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	conn, err := nfqueue.Open(uint16(*queue), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	seen := 0
	err = conn.Serve(ctx, func(p *nfqueue.Packet) nfqueue.Verdict {
		fmt.Printf("id=%d hook=%v family=%v len=%d mark=%#x\n", p.ID, p.Hook, p.Family, p.OrigLen(), p.Mark)
		if seen++; *count > 0 && seen >= *count {
			stop()
		}
		return nfqueue.Accept
	})
	if err != nil && err != context.Canceled {
		log.Fatal(err)
	}
}
