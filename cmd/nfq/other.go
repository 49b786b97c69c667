//go:build !linux

package main

import (
	"context"
	"errors"
	"flag"
	"runtime"
)

var errNotLinux = errors.New("NFQUEUE exists only on Linux, not on " + runtime.GOOS)

func unsupported(name, short string) *command {
	return &command{
		name:  name,
		short: short,
		usage: name,
		long:  "Linux only.",
		setup: func(*flag.FlagSet, *env) func(context.Context) error {
			return func(context.Context) error { return errNotLinux }
		},
	}
}

func demoCommand() *command {
	return unsupported("demo", "build a sandbox and show a queue at work (Linux only)")
}
func watchCommand() *command {
	return unsupported("watch", "print the packets of a queue (Linux only)")
}
func statsCommand() *command { return unsupported("stats", "list the queues (Linux only)") }
func benchCommand() *command {
	return unsupported("bench", "measure the library's throughput and latency (Linux only)")
}
