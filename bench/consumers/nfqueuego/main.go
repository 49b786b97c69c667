// Command nfqueuego is the benchmark consumer built on
// github.com/chifflier/nfqueue-go (cgo over libnetfilter_queue). It copies
// whole packets and accepts every packet.
//
// usage: nfqueuego QUEUE_NUM
//
// The package logs a line for every verdict through the standard logger; the
// output is discarded (the formatting still runs, the write does not).
// The package passes a Go pointer holding Go pointers to C, which the cgo
// pointer checker refuses at run time: run it with GODEBUG=cgocheck=0.
package main

import (
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/chifflier/nfqueue-go/nfqueue"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: nfqueuego QUEUE_NUM")
		os.Exit(2)
	}
	num, err := strconv.ParseUint(os.Args[1], 10, 16)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nfqueuego: bad queue number:", err)
		os.Exit(2)
	}
	log.SetOutput(io.Discard)

	var packets uint64
	q := new(nfqueue.Queue)
	q.SetCallback(func(p *nfqueue.Payload) int {
		packets++
		p.SetVerdict(nfqueue.NF_ACCEPT)
		return 0
	})
	if err := q.Init(); err != nil {
		fmt.Fprintln(os.Stderr, "nfqueuego:", err)
		os.Exit(1)
	}
	q.Unbind(syscall.AF_INET)
	q.Bind(syscall.AF_INET)
	if err := q.CreateQueue(int(num)); err != nil {
		fmt.Fprintln(os.Stderr, "nfqueuego:", err)
		os.Exit(1)
	}
	q.SetMode(nfqueue.NFQNL_COPY_PACKET)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		q.StopLoop() // the loop notices within its 500 ms select timeout
	}()

	err = q.Loop()
	q.DestroyQueue()
	q.Close()
	fmt.Fprintf(os.Stderr, "nfqueuego: %d packets\n", packets)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nfqueuego:", err)
		os.Exit(1)
	}
}
