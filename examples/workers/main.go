// Command workers judges packets on a pool of goroutines: the Serve handler
// clones each packet, hands it to a worker and returns Defer; the worker
// gives the verdict later with SetVerdict. A verdict timeout makes sure no
// packet waits forever if a worker is stuck.
package main

import (
	"bytes"
	"context"
	"flag"
	"log"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/nfqueue-go/nfqueue"
)

func main() {
	queue := flag.Uint("q", 0, "queue number")
	workers := flag.Int("workers", 8, "number of workers")
	flag.Parse()

	conn, err := nfqueue.Open(uint16(*queue), &nfqueue.Config{
		VerdictTimeout: 2 * time.Second,
		TimeoutVerdict: nfqueue.Accept, // fail open if a worker is stuck
		OnError:        func(err error) { log.Print(err) },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	jobs := make(chan *nfqueue.Packet, 1024)
	var wg sync.WaitGroup
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range jobs {
				v := nfqueue.Accept
				if bytes.Contains(p.Payload, []byte("forbidden")) { // a slow check would go here
					v = nfqueue.Drop
				}
				if err := conn.SetVerdict(p.ID, v); err != nil {
					log.Print(err)
				}
			}
		}()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = conn.Serve(ctx, func(p *nfqueue.Packet) nfqueue.Verdict {
		jobs <- p.Clone() // the packet's slices die when the handler returns
		return nfqueue.Defer
	})
	close(jobs)
	wg.Wait()
	if err != nil && err != context.Canceled {
		log.Fatal(err)
	}
}
