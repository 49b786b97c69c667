// Command nfq shows Linux NFQUEUE at work and helps to debug queues.
//
//	nfq demo                  build a sandbox, queue its traffic, apply a policy, check it
//	nfq watch -q N            print (and optionally record) the packets of queue N
//	nfq stats                 list the queues of this network namespace
//	nfq bench                 measure the library's throughput and latency here
//	nfq version               print the version
//
// Every command takes --help. Diagnostics go to standard error; a failing
// command exits with status 1 and a one-line reason, a usage error with 2.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

// command is one subcommand of nfq.
type command struct {
	name  string
	short string // one line for the command list
	usage string // the synopsis after "nfq "
	long  string // text printed by --help before the flags
	// setup declares the command's flags on fs and returns the function
	// that runs it.
	setup func(fs *flag.FlagSet, env *env) func(ctx context.Context) error
}

// env is what a command gets from its caller: output streams and logger.
type env struct {
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger
}

// usageError is a mistake in the command line: nfq exits with status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

func commands() []*command {
	return []*command{demoCommand(), watchCommand(), statsCommand(), benchCommand(), versionCommand()}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs nfq with args (without the program name) and returns the exit
// status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	top := flag.NewFlagSet("nfq", flag.ContinueOnError)
	top.SetOutput(stderr)
	verbose := top.Bool("v", false, "log debug messages to standard error")
	top.BoolVar(verbose, "verbose", false, "same as -v")
	top.Usage = func() { topUsage(stderr, top) }
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	e := &env{
		stdout: stdout,
		stderr: stderr,
		log:    slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
	}
	rest := top.Args()
	if len(rest) == 0 {
		topUsage(stderr, top)
		return 2
	}
	name := rest[0]
	if name == "help" {
		if len(rest) > 1 {
			name, rest = rest[1], []string{rest[1], "--help"}
		} else {
			topUsage(stdout, top)
			return 0
		}
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		fs := flag.NewFlagSet("nfq "+c.name, flag.ContinueOnError)
		fs.SetOutput(stderr)
		runFn := c.setup(fs, e)
		fs.Usage = func() {
			w := fs.Output()
			fmt.Fprintf(w, "Usage: nfq %s\n\n%s\n", c.usage, strings.TrimSpace(c.long))
			if hasFlags(fs) {
				fmt.Fprintf(w, "\nFlags:\n")
				fs.PrintDefaults()
			}
		}
		if err := fs.Parse(rest[1:]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "nfq %s: unexpected argument %q (see nfq %s --help)\n", c.name, fs.Arg(0), c.name)
			return 2
		}
		err := runFn(ctx)
		switch {
		case err == nil:
			return 0
		case errors.As(err, new(*usageError)):
			fmt.Fprintf(stderr, "nfq %s: %v (see nfq %s --help)\n", c.name, err, c.name)
			return 2
		default:
			fmt.Fprintf(stderr, "nfq %s: %s\n", c.name, oneLine(err.Error()))
			return 1
		}
	}
	fmt.Fprintf(stderr, "nfq: unknown command %q (see nfq --help)\n", name)
	return 2
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

func topUsage(w io.Writer, top *flag.FlagSet) {
	fmt.Fprintf(w, "nfq shows Linux NFQUEUE at work: packets that netfilter rules send to a\nuserspace program, which gives each one a verdict.\n\n")
	fmt.Fprintf(w, "Usage: nfq [-v] <command> [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.short)
	}
	fmt.Fprintf(w, "\nRun \"nfq <command> --help\" for a command's flags.\n\nGlobal flags:\n")
	top.SetOutput(w)
	top.PrintDefaults()
}

// oneLine folds a multi-line message into one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

func versionCommand() *command {
	return &command{
		name:  "version",
		short: "print the version of nfq and of the Go toolchain",
		usage: "version",
		long:  "Prints the module version of nfq, of the nfqueue library it is built with, and of Go.",
		setup: func(fs *flag.FlagSet, e *env) func(context.Context) error {
			return func(context.Context) error {
				fmt.Fprintln(e.stdout, versionString())
				return nil
			}
		},
	}
}

func versionString() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "nfq (unknown version)"
	}
	v := info.Main.Version
	lib := ""
	for _, d := range info.Deps {
		if d.Path == "github.com/nfqueue-go/nfqueue" {
			lib = d.Version
			if d.Replace != nil {
				lib = "local"
			}
		}
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return fmt.Sprintf("nfq %s (nfqueue %s, %s)", v, lib, info.GoVersion)
}
