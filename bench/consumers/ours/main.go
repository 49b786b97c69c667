// Command ours is the benchmark consumer built on this module's library,
// github.com/nfqueue-go/nfqueue. It copies whole packets (the default
// Config) and accepts every packet, in one of three modes:
//
//	serve          Conn.Serve with the default Config (verdicts batched)
//	serve-nobatch  Conn.Serve with Config.DisableBatching (one sendmsg per verdict)
//	pull           ReadPacket + SetVerdict in a loop, one verdict per packet
//	serve-busypoll Conn.Serve with Config.BusyPoll (never sleeps; spends a CPU)
//
// usage: ours [-mode serve|serve-nobatch|pull|serve-busypoll] QUEUE_NUM
//
// It exits cleanly on SIGINT or SIGTERM and then prints its counters.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/nfqueue-go/nfqueue"
)

func main() {
	mode := flag.String("mode", "serve", "serve, serve-nobatch, pull or serve-busypoll")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: ours [-mode serve|serve-nobatch|pull|serve-busypoll] QUEUE_NUM")
		os.Exit(2)
	}
	num, err := strconv.ParseUint(flag.Arg(0), 10, 16)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ours: bad queue number:", err)
		os.Exit(2)
	}

	var cfg *nfqueue.Config
	var serveErrs uint64
	switch *mode {
	case "serve":
		cfg = &nfqueue.Config{OnError: func(error) { serveErrs++ }}
	case "serve-nobatch":
		cfg = &nfqueue.Config{DisableBatching: true, OnError: func(error) { serveErrs++ }}
	case "serve-busypoll":
		cfg = &nfqueue.Config{BusyPoll: true, OnError: func(error) { serveErrs++ }}
	case "pull":
		cfg = nil
	default:
		fmt.Fprintln(os.Stderr, "ours: unknown -mode", *mode)
		os.Exit(2)
	}

	conn, err := nfqueue.Open(uint16(num), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ours:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	switch *mode {
	case "serve", "serve-nobatch", "serve-busypoll":
		err = conn.Serve(ctx, func(*nfqueue.Packet) nfqueue.Verdict { return nfqueue.Accept })
		if errors.Is(err, context.Canceled) {
			err = nil
		}
	case "pull":
		err = pull(ctx, conn)
	}
	st := conn.Stats()
	conn.Close()
	fmt.Fprintf(os.Stderr, "ours (%s): %d packets, %d accepted, %d batch verdicts, %d overruns, %d verdict errors, %d serve errors\n",
		*mode, st.Received, st.Accepted, st.BatchVerdicts, st.Overruns, st.VerdictErrors, serveErrs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ours:", err)
		os.Exit(1)
	}
}

// pull reads packets one at a time and accepts each with its own verdict,
// until ctx is cancelled.
func pull(ctx context.Context, conn *nfqueue.Conn) error {
	// Closing the Conn is what unblocks ReadPacket.
	stopped := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopped()
	var p nfqueue.Packet
	for {
		if err := conn.ReadPacket(&p); err != nil {
			if errors.Is(err, nfqueue.ErrClosed) {
				return nil
			}
			continue // overruns and verdict errors do not end reading
		}
		if err := conn.SetVerdict(p.ID, nfqueue.Accept); err != nil {
			if errors.Is(err, nfqueue.ErrClosed) {
				return nil
			}
		}
	}
}
