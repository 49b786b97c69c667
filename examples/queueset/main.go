// Command queueset serves a range of queues with one reader per queue, for
// a rule that spreads packets over them:
//
//	iptables -A INPUT -p udp -j NFQUEUE --queue-balance 0:3 --queue-cpu-fanout
//
// With --queue-cpu-fanout, queue i gets the packets handled by CPU i, so
// pinning reader i to CPU i keeps each packet on one CPU.
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/nfqueue-go/nfqueue"
)

func main() {
	first := flag.Uint("first", 0, "first queue number")
	n := flag.Int("n", runtime.NumCPU(), "number of queues")
	flag.Parse()
	set, err := nfqueue.OpenSet(uint16(*first), *n, nil, &nfqueue.SetOptions{PinReaders: true})
	if err != nil {
		log.Fatal(err)
	}
	defer set.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		for range time.Tick(5 * time.Second) {
			s := set.Stats()
			log.Printf("received %d accepted %d overruns %d kernel drops %d", s.Received, s.Accepted, s.Overruns, s.Kernel.QueueDropped+s.Kernel.UserDropped)
		}
	}()
	err = set.Serve(ctx, func(p *nfqueue.Packet) nfqueue.Verdict { return nfqueue.Accept })
	if err != nil && err != context.Canceled {
		log.Fatal(err)
	}
}
