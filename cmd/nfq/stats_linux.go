package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nfqueue-go/nfqueue"
	"golang.org/x/sys/unix"
)

func statsCommand() *command {
	return &command{
		name:  "stats",
		short: "list the queues of this network namespace with their owners and counters",
		usage: "stats [--watch] [--interval D] [--count N] [--json] [--netns PATH]",
		long: `Lists the NFQUEUE queues bound in a network namespace, from the kernel's
/proc/net/netfilter/nfnetlink_queue: the owning process (found through the
netlink port id, /proc/net/netlink and the processes' open files), the packets
waiting for a verdict, the copy mode, the packets dropped because the queue was
full and because the owner's socket buffer was full, and the id of the last
packet queued (the count of packets queued since the queue was bound).

--watch refreshes the table every --interval and adds per-second rates.`,
		setup: func(fs *flag.FlagSet, e *env) func(context.Context) error {
			o := &statsOpts{}
			fs.BoolVar(&o.watch, "watch", false, "refresh every --interval with per-second rates, until Ctrl-C")
			fs.DurationVar(&o.interval, "interval", time.Second, "refresh interval for --watch")
			fs.IntVar(&o.count, "count", 0, "with --watch, stop after this many tables (0: until Ctrl-C)")
			fs.BoolVar(&o.json, "json", false, "print one JSON object per table instead of text")
			fs.StringVar(&o.netns, "netns", "", "read the queues of the network namespace at this `path`, e.g. /run/netns/NAME")
			return func(ctx context.Context) error { return runStats(ctx, e, o) }
		},
	}
}

type statsOpts struct {
	watch    bool
	interval time.Duration
	count    int
	json     bool
	netns    string
}

// queueRow is one queue in the stats table.
type queueRow struct {
	Queue        uint16   `json:"queue"`
	PortID       uint32   `json:"portid"`
	PID          int      `json:"pid,omitempty"`
	Process      string   `json:"process,omitempty"`
	Waiting      uint32   `json:"waiting"`
	CopyMode     string   `json:"copy_mode"`
	CopyRange    uint32   `json:"copy_range"`
	QueueDropped uint32   `json:"queue_dropped"`
	UserDropped  uint32   `json:"user_dropped"`
	LastID       uint32   `json:"last_id"`
	Rate         *float64 `json:"packets_per_sec,omitempty"`
	DropRate     *float64 `json:"drops_per_sec,omitempty"`
}

// statsTable is one reading of the kernel's queue table.
type statsTable struct {
	Type   string     `json:"type"` // "stats"
	Time   time.Time  `json:"time"`
	NetNS  string     `json:"netns,omitempty"`
	Queues []queueRow `json:"queues"`
	Note   string     `json:"note,omitempty"`
}

func copyModeName(m uint8) string {
	switch m {
	case 0:
		return "none"
	case 1:
		return "meta"
	case 2:
		return "packet"
	}
	return fmt.Sprint(m)
}

// readStatsTable reads the queues of netns with their owners.
func readStatsTable(netns string) (statsTable, error) {
	t := statsTable{Type: "stats", Time: time.Now(), NetNS: netns, Queues: []queueRow{}}
	ks, err := nfqueue.ReadKernelStats(netns)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		t.Note = "the nfnetlink_queue module is not loaded: no queue is bound"
		return t, nil
	case errors.Is(err, fs.ErrPermission):
		return t, fmt.Errorf("reading the kernel's queue table: %w (the kernel hides it inside an unprivileged user namespace)", err)
	case err != nil:
		return t, fmt.Errorf("reading the kernel's queue table: %w", err)
	}
	for _, k := range ks {
		r := queueRow{
			Queue: k.Queue, PortID: k.PortID, Waiting: k.Waiting,
			CopyMode: copyModeName(k.CopyMode), CopyRange: k.CopyRange,
			QueueDropped: k.QueueDropped, UserDropped: k.UserDropped, LastID: k.LastID,
		}
		r.PID, r.Process = nfqueue.NetlinkSocketOwner(netns, k.PortID)
		t.Queues = append(t.Queues, r)
	}
	if len(t.Queues) == 0 {
		t.Note = "no queue is bound in this network namespace"
	}
	return t, nil
}

// addRates sets the per-second rates of t from the previous table.
func addRates(t, prev *statsTable) {
	dt := t.Time.Sub(prev.Time).Seconds()
	if dt <= 0 {
		return
	}
	for i := range t.Queues {
		r := &t.Queues[i]
		for _, p := range prev.Queues {
			if p.Queue != r.Queue || p.PortID != r.PortID {
				continue
			}
			rate := float64(r.LastID-p.LastID) / dt
			drops := float64((r.QueueDropped-p.QueueDropped)+(r.UserDropped-p.UserDropped)) / dt
			r.Rate, r.DropRate = &rate, &drops
		}
	}
}

// writeStatsText prints t as an aligned table.
func writeStatsText(w io.Writer, t *statsTable, rates bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	hdr := "QUEUE\tPORTID\tPID\tPROCESS\tWAITING\tCOPY\tDROPPED(full)\tDROPPED(socket)\tQUEUED"
	if rates {
		hdr += "\tPKT/S\tDROP/S"
	}
	fmt.Fprintln(tw, hdr)
	for _, r := range t.Queues {
		pid, proc := "-", "-"
		if r.PID != 0 {
			pid, proc = fmt.Sprint(r.PID), r.Process
		}
		cp := r.CopyMode
		if cp == "packet" {
			cp = fmt.Sprintf("packet/%d", r.CopyRange)
		}
		line := fmt.Sprintf("%d\t%d\t%s\t%s\t%d\t%s\t%d\t%d\t%d", r.Queue, r.PortID, pid, proc, r.Waiting, cp, r.QueueDropped, r.UserDropped, r.LastID)
		if rates {
			if r.Rate != nil {
				line += fmt.Sprintf("\t%.1f\t%.1f", *r.Rate, *r.DropRate)
			} else {
				line += "\t-\t-"
			}
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	if t.Note != "" {
		fmt.Fprintln(w, "("+t.Note+")")
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func runStats(ctx context.Context, e *env, o *statsOpts) error {
	if o.interval <= 0 {
		return usagef("--interval must be positive")
	}
	if o.count < 0 {
		return usagef("--count must not be negative")
	}
	if !o.watch && o.count > 0 {
		return usagef("--count needs --watch")
	}
	if o.netns != "" {
		ns, err := openNetNS(o.netns)
		if err != nil {
			return err
		}
		ns.Close()
	}
	out := &printer{w: e.stdout, json: o.json}
	term := !o.json && isTerminal(e.stdout)
	var prev *statsTable
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	for n := 1; ; n++ {
		t, err := readStatsTable(o.netns)
		if err != nil {
			return err
		}
		if prev != nil {
			addRates(&t, prev)
		}
		var text strings.Builder
		if o.watch {
			if term {
				text.WriteString("\033[H\033[2J")
			}
			where := "this network namespace"
			if o.netns != "" {
				where = o.netns
			}
			fmt.Fprintf(&text, "%s  queues of %s (every %v, Ctrl-C to stop)\n", t.Time.Format("15:04:05"), where, o.interval)
		}
		writeStatsText(&text, &t, o.watch)
		out.line(strings.TrimSuffix(text.String(), "\n"), &t)
		if !o.watch || (o.count > 0 && n >= o.count) {
			return nil
		}
		prev = &t
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
