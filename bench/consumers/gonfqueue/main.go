// Command gonfqueue is the benchmark consumer built on
// github.com/florianl/go-nfqueue/v2 (pure Go over mdlayher/netlink). It
// copies whole packets, keeps the kernel's default queue length and accepts
// every packet. Its error callback returns 0 so that receive errors such as
// ENOBUFS do not end the loop.
//
// usage: gonfqueue QUEUE_NUM
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	nfqueue "github.com/florianl/go-nfqueue/v2"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gonfqueue QUEUE_NUM")
		os.Exit(2)
	}
	num, err := strconv.ParseUint(os.Args[1], 10, 16)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gonfqueue: bad queue number:", err)
		os.Exit(2)
	}

	nf, err := nfqueue.Open(&nfqueue.Config{
		NfQueue:      uint16(num),
		MaxPacketLen: 0xffff,
		MaxQueueLen:  1024,
		Copymode:     nfqueue.NfQnlCopyPacket,
		WriteTimeout: 100 * time.Millisecond,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "gonfqueue: open:", err)
		os.Exit(1)
	}
	defer nf.Close()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var packets, verdictErrs, recvErrs atomic.Uint64
	onPacket := func(a nfqueue.Attribute) int {
		if a.PacketID == nil {
			return 0
		}
		if err := nf.SetVerdict(*a.PacketID, nfqueue.NfAccept); err != nil {
			verdictErrs.Add(1)
		}
		packets.Add(1)
		return 0
	}
	onError := func(err error) int {
		recvErrs.Add(1)
		return 0
	}
	if err := nf.RegisterWithErrorFunc(ctx, onPacket, onError); err != nil {
		fmt.Fprintln(os.Stderr, "gonfqueue: register:", err)
		os.Exit(1)
	}
	<-ctx.Done()
	fmt.Fprintf(os.Stderr, "gonfqueue: %d packets, %d verdict errors, %d receive errors\n",
		packets.Load(), verdictErrs.Load(), recvErrs.Load())
}
