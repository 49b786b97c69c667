package nfqueue_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/nfqueue-go/nfqueue"
)

// Open a queue with the defaults and serve it until interrupted.
func ExampleOpen() {
	conn, err := nfqueue.Open(0, nil) // iptables ... -j NFQUEUE --queue-num 0
	if err != nil {
		var busy *nfqueue.QueueBusyError
		if errors.As(err, &busy) {
			log.Fatalf("queue 0 is taken by pid %d (%s)", busy.OwnerPID, busy.OwnerName)
		}
		log.Fatal(err)
	}
	defer conn.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err = conn.Serve(ctx, func(p *nfqueue.Packet) nfqueue.Verdict {
		if bytes.Contains(p.Payload, []byte("forbidden")) {
			return nfqueue.Drop
		}
		return nfqueue.Accept
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

// Verdicts are values: a decision with options.
func ExampleVerdict() {
	fmt.Println(nfqueue.Accept)
	fmt.Println(nfqueue.Accept.WithMark(7).WithPriority(3))
	fmt.Println(nfqueue.QueueTo(4).WithBypass())
	fmt.Println(nfqueue.Repeat.WithMark(0x100))
	fmt.Println(nfqueue.Drop.WithPayload([]byte{0x45, 0, 0, 20}).Kind())
	// Output:
	// accept
	// accept mark=0x7 priority=3
	// queue 4 bypass
	// repeat mark=0x100
	// drop
}

// Configure the queue: a copy range for header inspection, a longer queue
// that fails open, and a verdict deadline.
func ExampleConfig() {
	conn, err := nfqueue.Open(1, &nfqueue.Config{
		CopyRange:      128,  // headers are enough
		MaxQueueLen:    8192, // room for bursts
		FailOpen:       true, // accept rather than drop when full
		VerdictTimeout: time.Second,
		TimeoutVerdict: nfqueue.Accept,
		BindRetry:      time.Second, // after a crash, wait for the old owner to go
		OnError:        func(err error) { log.Print(err) },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
}

// The pull API: read packets and give verdicts from any goroutine.
func ExampleConn_ReadPacket() {
	conn, err := nfqueue.Open(2, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	var p nfqueue.Packet
	for {
		err := conn.ReadPacket(&p)
		switch {
		case errors.Is(err, nfqueue.ErrClosed):
			return
		case err != nil:
			log.Print(err) // an overrun or a verdict error: keep reading
			continue
		}
		if err := conn.SetVerdict(p.ID, nfqueue.Accept); err != nil {
			log.Print(err)
		}
	}
}

// A handler that answers later: Defer, then SetVerdict from elsewhere.
func ExampleDefer() {
	conn, err := nfqueue.Open(3, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	lookups := make(chan *nfqueue.Packet, 128)
	go func() {
		for p := range lookups {
			v := nfqueue.Accept
			if len(p.Payload) > 1000 { // stands for a slow check
				v = nfqueue.Drop
			}
			conn.SetVerdict(p.ID, v)
		}
	}()
	conn.Serve(context.Background(), func(p *nfqueue.Packet) nfqueue.Verdict {
		lookups <- p.Clone() // p's slices are only valid until we return
		return nfqueue.Defer
	})
}

// Serve the four queues of --queue-balance 0:3, one reader each.
func ExampleOpenSet() {
	set, err := nfqueue.OpenSet(0, 4, nil, &nfqueue.SetOptions{PinReaders: true})
	if err != nil {
		log.Fatal(err)
	}
	defer set.Close()
	set.Serve(context.Background(), func(p *nfqueue.Packet) nfqueue.Verdict { return nfqueue.Accept })
}
