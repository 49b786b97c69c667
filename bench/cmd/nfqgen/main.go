// Command nfqgen generates the benchmark's UDP traffic over loopback.
//
// Two modes:
//
//	nfqgen flood -addr 127.0.0.1:9000 -size 64 -duration 5s
//	nfqgen pingpong -addr 127.0.0.1:9002 -n 5000
//
// flood sends UDP datagrams of -size payload bytes to -addr with sendmmsg(2)
// for -duration and reports how many the kernel accepted. A datagram held in
// an NFQUEUE queue still counts against the sending socket's send buffer, so
// with the default buffer a slow consumer slows the sender down (a few
// hundred packets wait at most) instead of overflowing the queue; a large
// -sndbuf lets the queue fill up and the kernel drop. It prints one JSON
// line {"event":"start"} right before the first send and one JSON line with
// the totals at the end, so a driver reading its output can take counter
// snapshots exactly around the sending window.
//
// pingpong measures round trips: a client socket sends one datagram to a
// server socket bound to -addr, the server echoes it back to the client, and
// the client receives it. Both sockets are blocking and served by one locked
// OS thread, so no goroutine hand-off adds to the figure; only the client to
// server direction goes to -addr, so a queue rule on -addr's port is crossed
// once per round trip. It prints one JSON line with percentiles.
//
// Only loopback destinations are accepted.
package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "flood":
		err = flood(os.Args[2:])
	case "pingpong":
		err = pingpong(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nfqgen:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: nfqgen flood|pingpong [flags] (-h for flags)")
	os.Exit(2)
}

// loopbackAddr parses s and refuses anything outside 127.0.0.0/8.
func loopbackAddr(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return ap, err
	}
	if !ap.Addr().Is4() || !ap.Addr().IsLoopback() {
		return ap, fmt.Errorf("%s: only 127.0.0.0/8 destinations are allowed", s)
	}
	return ap, nil
}

func sockaddr(ap netip.AddrPort) *unix.SockaddrInet4 {
	return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
}

func emit(v any) {
	b, _ := json.Marshal(v)
	os.Stdout.Write(append(b, '\n'))
}

// mmsghdr is struct mmsghdr from <sys/socket.h>.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

func flood(args []string) error {
	fs := flag.NewFlagSet("flood", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:9000", "destination (127.0.0.0/8 only)")
	size := fs.Int("size", 64, "UDP payload bytes")
	duration := fs.Duration("duration", 5*time.Second, "how long to send")
	batch := fs.Int("batch", 64, "datagrams per sendmmsg call")
	sndbuf := fs.Int("sndbuf", 0, "socket send buffer in bytes (SO_SNDBUFFORCE); 0 keeps the system default")
	fs.Parse(args)
	if *size < 0 || *size > 65507 || *batch < 1 || *batch > 1024 {
		return errors.New("bad -size or -batch")
	}
	dst, err := loopbackAddr(*addr)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, sockaddr(dst)); err != nil {
		return err
	}
	if *sndbuf > 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, *sndbuf); err != nil {
			return fmt.Errorf("SO_SNDBUFFORCE: %w", err)
		}
	}

	payload := make([]byte, max(*size, 1))
	iov := unix.Iovec{Base: &payload[0]}
	iov.SetLen(*size)
	msgs := make([]mmsghdr, *batch)
	for i := range msgs {
		msgs[i].hdr.Iov = &iov
		msgs[i].hdr.SetIovlen(1)
	}

	var sent, calls uint64
	errs := map[string]uint64{}
	u0, s0 := rusage()
	emit(map[string]any{"event": "start", "utime_us": u0, "stime_us": s0})
	start := time.Now()
	deadline := start.Add(*duration)
	for seq := uint64(0); ; seq++ {
		if seq&15 == 0 && !time.Now().Before(deadline) {
			break
		}
		if *size >= 8 {
			binary.LittleEndian.PutUint64(payload, seq)
		}
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd),
			uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), 0, 0, 0)
		calls++
		if e != 0 {
			// EPERM: a netfilter rule dropped the first datagram;
			// ENOBUFS: no buffer. Either way, go on sending.
			errs[e.Error()]++
			continue
		}
		sent += uint64(n)
	}
	elapsed := time.Since(start)
	u1, s1 := rusage()
	runtime.KeepAlive(payload)
	runtime.KeepAlive(&iov)
	emit(map[string]any{
		"event":      "done",
		"sent":       sent,
		"calls":      calls,
		"errors":     errs,
		"elapsed_ns": elapsed.Nanoseconds(),
		"pps":        float64(sent) / elapsed.Seconds(),
		"utime_us":   u1,
		"stime_us":   s1,
	})
	return nil
}

// rusage returns this process's user and system CPU time in microseconds.
func rusage() (user, sys int64) {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() / 1e3, ru.Stime.Nano() / 1e3
}

func pingpong(args []string) error {
	fs := flag.NewFlagSet("pingpong", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:9002", "server address (127.0.0.0/8 only)")
	n := fs.Int("n", 5000, "measured round trips")
	warmup := fs.Int("warmup", 200, "unmeasured round trips first")
	size := fs.Int("size", 64, "UDP payload bytes")
	timeout := fs.Duration("timeout", time.Second, "per-receive timeout; a timeout counts as lost")
	gap := fs.Duration("gap", 0, "pause between round trips")
	maxLost := fs.Int("max-lost", 10, "give up after this many lost round trips")
	fs.Parse(args)
	dst, err := loopbackAddr(*addr)
	if err != nil {
		return err
	}
	if *n < 1 || *size < 8 || *size > 65507 {
		return errors.New("bad -n or -size (need >= 8 bytes for the sequence number)")
	}

	runtime.LockOSThread()
	srv, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(srv)
	if err := unix.Bind(srv, sockaddr(dst)); err != nil {
		return fmt.Errorf("bind %s: %w", dst, err)
	}
	cli, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(cli)
	if err := unix.Connect(cli, sockaddr(dst)); err != nil {
		return err
	}
	tv := unix.NsecToTimeval(timeout.Nanoseconds())
	for _, fd := range []int{srv, cli} {
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
	}

	out := make([]byte, *size)
	in := make([]byte, 65536)
	rtts := make([]int64, 0, *n)
	var lost, stale uint64
	for i := 0; i < *warmup+*n; i++ {
		if lost >= uint64(*maxLost) {
			return fmt.Errorf("%d round trips lost (after %d sent); giving up", lost, i)
		}
		if *gap > 0 {
			time.Sleep(*gap)
		}
		seq := uint64(i)
		binary.LittleEndian.PutUint64(out, seq)
		t0 := time.Now()
		if _, err := unix.Write(cli, out); err != nil {
			lost++
			continue
		}
		// Server side: receive and echo to the sender.
		m, from, err := unix.Recvfrom(srv, in, 0)
		if err != nil {
			lost++
			continue
		}
		if err := unix.Sendto(srv, in[:m], 0, from); err != nil {
			lost++
			continue
		}
		// Client side: wait for the echo of this very datagram.
		ok := false
		for {
			m, err = unix.Read(cli, in)
			if err != nil {
				break
			}
			if m >= 8 && binary.LittleEndian.Uint64(in) == seq {
				ok = true
				break
			}
			stale++
		}
		rtt := time.Since(t0)
		if !ok {
			lost++
			continue
		}
		if i >= *warmup {
			rtts = append(rtts, rtt.Nanoseconds())
		}
	}
	if len(rtts) == 0 {
		return errors.New("no round trip completed")
	}
	slices.Sort(rtts)
	pct := func(p float64) int64 { return rtts[int(p*float64(len(rtts)-1)+0.5)] }
	var sum int64
	for _, r := range rtts {
		sum += r
	}
	utime, stime := rusage()
	emit(map[string]any{
		"utime_us": utime,
		"stime_us": stime,
		"event":    "pingpong",
		"n":        len(rtts),
		"lost":     lost,
		"stale":    stale,
		"p50_ns":   pct(0.50),
		"p90_ns":   pct(0.90),
		"p99_ns":   pct(0.99),
		"max_ns":   rtts[len(rtts)-1],
		"mean_ns":  sum / int64(len(rtts)),
	})
	return nil
}
