package nfqueue_test

import (
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/nfqueue-go/nfqueue/compat/nfqueue"
)

// printAndAccept returns a callback that writes what it knows of each
// packet to w and accepts the packet.
func printAndAccept(w io.Writer) nfqueue.Callback {
	return func(p *nfqueue.Payload) int {
		fmt.Fprintf(w, "packet %d\n", p.Id)
		fmt.Fprintf(w, "  mark %d\n", p.GetNFMark())
		fmt.Fprintf(w, "  interfaces: in %d, out %d\n", p.GetInDev(), p.GetOutDev())
		fmt.Fprintf(w, "  bridge ports: in %d, out %d\n", p.GetPhysInDev(), p.GetPhysOutDev())
		fmt.Fprint(w, hex.Dump(p.Data))
		if err := p.SetVerdict(nfqueue.NF_ACCEPT); err != nil {
			fmt.Fprintln(w, "  verdict:", err)
		}
		return 0
	}
}

// A minimal consumer, as in nfqueue-go: it prints each packet of queue 0
// and accepts it, until Ctrl-C. Feed it with a rule such as
//
//	iptables -A OUTPUT -d 192.0.2.1 -j NFQUEUE --queue-num 0
//
// and run it with CAP_NET_ADMIN.
func Example() {
	q := new(nfqueue.Queue)
	q.SetCallback(printAndAccept(os.Stdout))
	if err := q.Init(); err != nil {
		fmt.Println(err)
		return
	}
	defer q.Close()

	// Accepted for compatibility; the kernel ignores them.
	q.Unbind(syscall.AF_INET)
	q.Bind(syscall.AF_INET)

	if err := q.CreateQueue(0); err != nil {
		fmt.Println(err)
		return
	}
	q.SetMode(nfqueue.NFQNL_COPY_PACKET)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	go func() {
		<-sig
		q.StopLoop()
	}()

	if err := q.Loop(); err != nil {
		fmt.Println(err)
	}
	q.DestroyQueue()
}
