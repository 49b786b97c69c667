// Command dropprivs opens its queue with CAP_NET_ADMIN and then gives up
// every privilege before it handles a single packet: the bound socket keeps
// working, so the code that parses untrusted packets runs as nobody.
//
// Run it as root (or with cap_net_admin,cap_setuid,cap_setgid) and feed it
// with a rule such as
//
//	iptables -A INPUT -p udp --dport 5353 -j NFQUEUE --queue-num 2 --queue-bypass
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
	queue := flag.Uint("q", 2, "queue number")
	uid := flag.Int("uid", 65534, "user to become after opening the queue")
	gid := flag.Int("gid", 65534, "group to become after opening the queue")
	flag.Parse()

	conn, err := nfqueue.Open(uint16(*queue), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	// Go applies these to every thread of the process. Groups first, then
	// the gid, then the uid: after Setuid nothing else may be changed.
	if err := syscall.Setgroups(nil); err != nil {
		log.Fatal(err)
	}
	if err := syscall.Setgid(*gid); err != nil {
		log.Fatal(err)
	}
	if err := syscall.Setuid(*uid); err != nil {
		log.Fatal(err)
	}
	log.Printf("queue %d bound; now running as uid %d gid %d", *queue, os.Getuid(), os.Getgid())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = conn.Serve(ctx, func(p *nfqueue.Packet) nfqueue.Verdict {
		fmt.Printf("id=%d len=%d\n", p.ID, len(p.Payload))
		return nfqueue.Accept
	})
	if err != nil && err != context.Canceled {
		log.Fatal(err)
	}
}
